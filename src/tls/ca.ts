// Certificates with node-forge: a CA, serving certificates signed by it, and
// client certificates (the end-to-end tests use them for kube-apiserver).
// Keys are RSA 2048: forge cannot sign with EC keys, and it generates RSA keys
// with Node's native crypto, so a pair takes milliseconds, not seconds.
import { randomBytes, X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import forge from 'node-forge'

export interface CertificateAuthority {
  certPem: string
  keyPem: string
  notAfter: Date
}

export interface IssuedCert {
  certPem: string
  keyPem: string
  notAfter: Date
}

// Certificates are valid from a minute ago, so clocks a little behind still accept them.
const CLOCK_SKEW_MS = 60_000

function serialNumber(): string {
  // Positive, 16 random bytes: unique without coordination between replicas.
  const bytes = randomBytes(16)
  bytes[0] = bytes[0]! & 0x7f
  return bytes.toString('hex')
}

function newCert(publicKey: forge.pki.PublicKey, validityMs: number, now = Date.now()): forge.pki.Certificate {
  const cert = forge.pki.createCertificate()
  cert.publicKey = publicKey
  cert.serialNumber = serialNumber()
  cert.validity.notBefore = new Date(now - CLOCK_SKEW_MS)
  cert.validity.notAfter = new Date(now + validityMs)
  return cert
}

function keyPair(): forge.pki.rsa.KeyPair {
  return forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 })
}

export function generateCA(options: { commonName: string; validityMs: number }): CertificateAuthority {
  const keys = keyPair()
  const cert = newCert(keys.publicKey, options.validityMs)
  const subject = [{ name: 'commonName', value: options.commonName }]
  cert.setSubject(subject)
  cert.setIssuer(subject)
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ])
  cert.sign(keys.privateKey, forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey), notAfter: cert.validity.notAfter }
}

function signedBy(ca: CertificateAuthority, cert: forge.pki.Certificate, subject: forge.pki.CertificateField[], extensions: object[]): void {
  const caCert = forge.pki.certificateFromPem(ca.certPem)
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem)
  cert.setSubject(subject)
  cert.setIssuer(caCert.subject.attributes)
  cert.setExtensions([...extensions, { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() }])
  cert.sign(caKey, forge.md.sha256.create())
}

// `issuedAt` (default now) is for tests of certificates outside their validity.
export function generateServingCert(options: { ca: CertificateAuthority; hosts: readonly string[]; validityMs: number; issuedAt?: number }): IssuedCert {
  if (options.hosts.length === 0) throw new Error('a serving certificate needs at least one host name or IP')
  const keys = keyPair()
  const cert = newCert(keys.publicKey, options.validityMs, options.issuedAt)
  const altNames = options.hosts.map((host) => (isIP(host) ? { type: 7, ip: host } : { type: 2, value: host }))
  signedBy(options.ca, cert, [{ name: 'commonName', value: options.hosts[0]! }], [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
  ])
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey), notAfter: cert.validity.notAfter }
}

export function generateClientCert(options: { ca: CertificateAuthority; commonName: string; organizations?: readonly string[]; validityMs: number }): IssuedCert {
  const keys = keyPair()
  const cert = newCert(keys.publicKey, options.validityMs)
  const subject = [{ name: 'commonName', value: options.commonName }, ...(options.organizations ?? []).map((o) => ({ name: 'organizationName', value: o }))]
  signedBy(options.ca, cert, subject, [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
  ])
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey), notAfter: cert.validity.notAfter }
}

// The leaf's validity window, read with Node's own X.509 parser.
export function certificateValidity(certPem: string): { notBefore: Date; notAfter: Date; serialNumber: string } {
  const cert = new X509Certificate(certPem)
  return { notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo), serialNumber: cert.serialNumber }
}
