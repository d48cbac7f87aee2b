// Certificate helpers of auto-TLS: PEM bundles, validity, who signed what.
import { createPrivateKey, X509Certificate } from 'node:crypto'

export const b64 = (text: string): string => Buffer.from(text).toString('base64')
export const unb64 = (text: string | undefined): string | undefined => (text === undefined ? undefined : Buffer.from(text, 'base64').toString('utf8'))

export function parseCert(pem: string | undefined): X509Certificate | undefined {
  if (!pem) return undefined
  try {
    return new X509Certificate(pem)
  } catch {
    return undefined
  }
}

export const notAfterMs = (cert: X509Certificate | undefined): number => (cert ? new Date(cert.validTo).getTime() : 0)
export const notBeforeMs = (cert: X509Certificate): number => new Date(cert.validFrom).getTime()

// The certificates of a PEM bundle, in order, each once.
export function bundleCerts(pem: string | undefined): X509Certificate[] {
  const out: X509Certificate[] = []
  for (const block of pem?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
    const cert = parseCert(block)
    if (cert && !out.some((c) => c.fingerprint256 === cert.fingerprint256)) out.push(cert)
  }
  return out
}

export function signedBy(certPem: string, ca: X509Certificate): boolean {
  try {
    return new X509Certificate(certPem).verify(ca.publicKey)
  } catch {
    return false
  }
}

export function coversHosts(certPem: string, hosts: string[]): boolean {
  const cert = parseCert(certPem)
  if (!cert) return false
  return hosts.every((h) => (/^[\d.]+$|:/.test(h) ? cert.checkIP(h) : cert.checkHost(h, { wildcards: false })) !== undefined)
}

// The CA certificate of a bundle that is valid now and was issued last.
export function newestValid(certs: X509Certificate[], nowMs: number): X509Certificate | undefined {
  const valid = certs.filter((c) => c.ca && notAfterMs(c) > nowMs)
  return valid.sort((a, b) => notBeforeMs(b) - notBeforeMs(a))[0]
}

// Whether keyPem is the private key of the certificate's public key.
export function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem))
  } catch {
    return false
  }
}

const iso = (ms: number): string => new Date(ms).toISOString()

// Why the CA in the Secret cannot stay, or undefined when it can: missing or
// unreadable, not a CA, its key not its own (every certificate it signed
// would fail to verify), expired or within renewBeforeMs of its end. The
// reason is logged: it names dates and fingerprints, never key material.
export function caProblem(certPem: string | undefined, keyPem: string | undefined, nowMs: number, renewBeforeMs: number): string | undefined {
  if (!certPem || !keyPem) return 'no CA certificate and key in the Secret'
  const cert = parseCert(certPem)
  if (!cert) return 'the CA certificate does not parse'
  if (!cert.ca) return `the CA certificate ${cert.fingerprint256} is not a CA (basicConstraints)`
  if (!keyMatches(cert, keyPem)) return `the CA key does not belong to the CA certificate ${cert.fingerprint256}`
  const endMs = notAfterMs(cert)
  if (endMs <= nowMs) return `the CA expired at ${iso(endMs)}`
  if (endMs - nowMs < renewBeforeMs) return `the CA expires at ${iso(endMs)}, within its renewal window`
  return undefined
}

// Why the serving pair in the Secret cannot be served on, or undefined when it
// can: missing or unreadable, expired or within renewBeforeMs of its end, not
// signed by one of cas, its names (SANs) not covering hosts, or the key not
// the certificate's. Logged like caProblem: never the key.
export function leafProblem(certPem: string | undefined, keyPem: string | undefined, cas: X509Certificate[], hosts: string[], nowMs: number, renewBeforeMs: number): string | undefined {
  if (!certPem || !keyPem) return 'no serving certificate and key in the Secret'
  const cert = parseCert(certPem)
  if (!cert) return 'the serving certificate does not parse'
  const endMs = notAfterMs(cert)
  if (endMs <= nowMs) return `the serving certificate expired at ${iso(endMs)}`
  if (endMs - nowMs < renewBeforeMs) return `the serving certificate expires at ${iso(endMs)}, within its renewal window`
  if (!cas.some((ca) => signedBy(certPem, ca))) return `the serving certificate is not signed by the CA ${cas.map((ca) => ca.fingerprint256).join(' or ')}`
  const missing = hosts.filter((h) => !coversHosts(certPem, [h]))
  if (missing.length > 0) return `the serving certificate's names (${cert.subjectAltName ?? 'none'}) do not cover ${missing.join(', ')}`
  if (!keyMatches(cert, keyPem)) return 'the serving key does not belong to the serving certificate'
  return undefined
}
