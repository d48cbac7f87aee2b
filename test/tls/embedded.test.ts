// The embedded default: a local CA and a localhost certificate in certs/,
// reused while good, remade when not.
import t, { type Test } from 'tap'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateCA, generateServingCert } from '../../src/tls/ca.ts'
import { ensureEmbeddedCerts } from '../../src/tls/embedded.ts'

const HOUR = 3_600_000

function tempDir(t: Test): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'vault-injector-embedded-')), 'certs')
  t.teardown(() => rmSync(join(dir, '..'), { recursive: true, force: true }))
  return dir
}

function serialIn(file: string): string {
  return new X509Certificate(readFileSync(file, 'utf8')).serialNumber
}

t.test('first run: CA, certificate and key for localhost; the key is private', async (t) => {
  const dir = tempDir(t)
  const certs = ensureEmbeddedCerts(dir)
  t.equal(certs.created, true)
  t.same(readdirSync(dir).sort(), ['ca.crt', 'tls.crt', 'tls.key'], 'no temporary files left behind')
  t.equal(statSync(certs.keyFile).mode & 0o777, 0o600)
  const ca = new X509Certificate(readFileSync(certs.caFile, 'utf8'))
  const leaf = new X509Certificate(readFileSync(certs.certFile, 'utf8'))
  t.ok(ca.ca)
  t.ok(leaf.verify(ca.publicKey), 'signed by the CA in ca.crt')
  t.ok(leaf.checkHost('localhost'))
  t.ok(leaf.checkIP('127.0.0.1'))
  t.ok(leaf.checkIP('::1'))
  t.ok(new Date(leaf.validTo).getTime() - Date.now() > 30 * 24 * HOUR)
  t.notOk(readFileSync(certs.caFile, 'utf8').includes('PRIVATE KEY'), 'the CA key is not kept')
})

t.test('a good pair is reused; one expiring within a day, or not from this CA, is remade', async (t) => {
  const dir = tempDir(t)
  const first = ensureEmbeddedCerts(dir)
  const serial = serialIn(first.certFile)
  const again = ensureEmbeddedCerts(dir)
  t.equal(again.created, false)
  t.equal(serialIn(again.certFile), serial, 'same certificate')

  // Less than 24 h left: remade.
  const ca = generateCA({ commonName: 'short', validityMs: 48 * HOUR })
  const short = generateServingCert({ ca, hosts: ['localhost', '127.0.0.1', '::1'], validityMs: 12 * HOUR })
  writeFileSync(join(dir, 'ca.crt'), ca.certPem)
  writeFileSync(join(dir, 'tls.crt'), short.certPem)
  writeFileSync(join(dir, 'tls.key'), short.keyPem)
  const renewed = ensureEmbeddedCerts(dir)
  t.equal(renewed.created, true)
  t.not(serialIn(renewed.certFile), new X509Certificate(short.certPem).serialNumber, "a new certificate")

  // A certificate the CA beside it did not sign: remade.
  const other = generateCA({ commonName: 'other', validityMs: 48 * HOUR })
  writeFileSync(join(dir, 'ca.crt'), other.certPem)
  t.equal(ensureEmbeddedCerts(dir).created, true)
  const leaf = new X509Certificate(readFileSync(join(dir, 'tls.crt'), 'utf8'))
  t.ok(leaf.verify(new X509Certificate(readFileSync(join(dir, 'ca.crt'), 'utf8')).publicKey))

  // A missing key: remade.
  rmSync(join(dir, 'tls.key'))
  t.equal(ensureEmbeddedCerts(dir).created, true)
})
