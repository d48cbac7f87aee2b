// The embedded default for a first run with no certificate and no cluster: a
// CA and a serving certificate for localhost in certs/, reused while valid.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
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

function stillGood(dir: string): boolean {
  try {
    const pair = loadPair(join(dir, 'tls.crt'), join(dir, 'tls.key'))
    return existsSync(join(dir, 'ca.crt')) && certificateValidity(pair.certPem).notAfter.getTime() - Date.now() > DAY_MS
  } catch {
    return false
  }
}

export function ensureEmbeddedCerts(dir: string): EmbeddedCerts {
  const files = { dir, caFile: join(dir, 'ca.crt'), certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') }
  if (stillGood(dir)) return { ...files, created: false }
  mkdirSync(dir, { recursive: true })
  const ca = generateCA({ commonName: 'vault-injector local CA', validityMs: CA_VALIDITY_MS })
  const leaf = generateServingCert({ ca, hosts: HOSTS, validityMs: SERVING_VALIDITY_MS })
  writeFileSync(files.caFile, ca.certPem)
  // The CA key is not kept: nothing else is ever signed with this CA.
  writeFileSync(files.keyFile, leaf.keyPem, { mode: 0o600 })
  chmodSync(files.keyFile, 0o600)
  writeFileSync(files.certFile, leaf.certPem)
  return { ...files, created: true }
}
