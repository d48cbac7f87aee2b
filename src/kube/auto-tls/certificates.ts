// Certificate helpers of auto-TLS: PEM bundles, validity, who signed what.
import { X509Certificate } from 'node:crypto'

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
