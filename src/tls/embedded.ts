// The embedded default for a first run with no certificate and no cluster: a
// CA and a serving certificate for localhost in certs/, reused while valid.
import { X509Certificate } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { certificateValidity, generateCA, generateServingCert } from './ca.ts'
import { loadPair } from './files.ts'

const DAY_MS = 24 * 3_600_000
const CA_VALIDITY_MS = 365 * DAY_MS
const SERVING_VALIDITY_MS = 90 * DAY_MS
const HOSTS = ['localhost', '127.0.0.1', '::1']

export interface EmbeddedCerts {
  dir: string
  caFile: string
  certFile: string
  keyFile: string
  created: boolean
}

// Reused when the pair loads, was signed by the CA beside it, covers every
// local host name, and has more than a day left.
function stillGood(dir: string): boolean {
  try {
    const pair = loadPair(join(dir, 'tls.crt'), join(dir, 'tls.key'))
    const leaf = new X509Certificate(pair.certPem)
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt'), 'utf8'))
    const coversHosts = HOSTS.every((host) => (isIP(host) ? leaf.checkIP(host) : leaf.checkHost(host)) !== undefined)
    return leaf.verify(ca.publicKey) && coversHosts && certificateValidity(pair.certPem).notAfter.getTime() - Date.now() > DAY_MS
  } catch {
    return false
  }
}

// Written beside, then renamed: a reader never sees half a file, and the key
// is never readable by others, not even for a moment.
function writeAtomic(file: string, content: string, mode: number): void {
  const temporary = `${file}.${process.pid}.tmp`
  writeFileSync(temporary, content, { mode })
  renameSync(temporary, file)
}

export function ensureEmbeddedCerts(dir: string): EmbeddedCerts {
  const files = { dir, caFile: join(dir, 'ca.crt'), certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') }
  if (stillGood(dir)) return { ...files, created: false }
  mkdirSync(dir, { recursive: true })
  const ca = generateCA({ commonName: 'vault-injector local CA', validityMs: CA_VALIDITY_MS })
  const leaf = generateServingCert({ ca, hosts: HOSTS, validityMs: SERVING_VALIDITY_MS })
  writeAtomic(files.caFile, ca.certPem, 0o644)
  // The CA key is not kept: nothing else is ever signed with this CA.
  writeAtomic(files.keyFile, leaf.keyPem, 0o600)
  writeAtomic(files.certFile, leaf.certPem, 0o644)
  return { ...files, created: true }
}
