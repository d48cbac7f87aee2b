// Certificate files: loaded, reloaded on change (including Kubernetes' `..data`
// symlink swap), and a pair that does not load never replaces a good one.
import t, { type Test } from 'tap'
import { X509Certificate } from 'node:crypto'
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateCA, generateServingCert, type IssuedCert } from '../../src/tls/ca.ts'
import type { Logger } from '../../src/log.ts'
import { FileCertSource, loadPair } from '../../src/tls/files.ts'
import type { CertPair } from '../../src/tls/source.ts'

const HOUR = 3_600_000
const ca = generateCA({ commonName: 'files test CA', validityMs: HOUR })
const leaves = Array.from({ length: 3 }, () => generateServingCert({ ca, hosts: ['localhost'], validityMs: HOUR }))
const [first, second, third] = leaves as [IssuedCert, IssuedCert, IssuedCert]

function serial(pair: CertPair | undefined): string | undefined {
  return pair ? new X509Certificate(pair.certPem).serialNumber : undefined
}

function recorder(): Logger & { lines: { level: string; msg: string; obj: object }[] } {
  const lines: { level: string; msg: string; obj: object }[] = []
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', msg, obj }),
    warn: (obj, msg) => lines.push({ level: 'warn', msg, obj }),
    error: (obj, msg) => lines.push({ level: 'error', msg, obj }),
  }
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-files-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function writePair(dir: string, leaf: IssuedCert): void {
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem)
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem)
}

// Polls until the condition holds (the source polls every 10 ms here).
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (condition()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`timed out waiting for ${what}`)
}

function source(t: Test, dir: string, logger: Logger): FileCertSource {
  const s = new FileCertSource({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), logger, pollIntervalMs: 10 })
  t.teardown(() => s.close())
  return s
}

t.test('loadPair refuses a key that does not belong to the certificate', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'tls.crt'), first.certPem)
  writeFileSync(join(dir, 'tls.key'), second.keyPem)
  t.throws(() => loadPair(join(dir, 'tls.crt'), join(dir, 'tls.key')), /does not belong to the certificate/)
  writeFileSync(join(dir, 'tls.crt'), 'garbage')
  t.throws(() => loadPair(join(dir, 'tls.crt'), join(dir, 'tls.key')))
})

t.test('ready waits for files that appear later', async (t) => {
  const dir = tempDir(t)
  const log = recorder()
  const s = source(t, dir, log)
  t.equal(s.current(), undefined)
  let resolved = false
  const ready = s.ready().then((pair) => {
    resolved = true
    return pair
  })
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.notOk(resolved, 'not ready without files')
  t.equal(log.lines.filter((l) => l.msg === 'serving certificate not loadable yet').length, 1, 'the missing files are reported once, not on every poll')
  writePair(dir, first)
  t.equal(serial(await ready), serial(first))
  t.equal(serial(s.current()), serial(first))
})

t.test('a changed pair reaches every listener; a mismatched pair keeps the last good one', async (t) => {
  const dir = tempDir(t)
  writePair(dir, first)
  const log = recorder()
  const s = source(t, dir, log)
  t.equal(serial(await s.ready()), serial(first))
  const seen: string[] = []
  s.onChange(() => {
    throw new Error('listener bug')
  })
  s.onChange((pair) => seen.push(serial(pair)!))

  writePair(dir, second)
  await until(() => seen.length === 1, 'the second pair')
  t.same(seen, [serial(second)], 'the second listener got the new pair although the first threw')
  t.ok(log.lines.some((l) => l.level === 'error' && l.msg === 'serving certificate not applied; keeping the current one'))
  t.ok(log.lines.some((l) => l.msg === 'serving certificate reloaded'))

  // Key of one pair, certificate of another: never served.
  writeFileSync(join(dir, 'tls.crt'), third.certPem)
  await until(() => log.lines.some((l) => l.msg === 'new serving certificate not loaded; keeping the current one'), 'the mismatch warning')
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.equal(serial(s.current()), serial(second), 'the last good pair stays')
  t.equal(log.lines.filter((l) => l.msg === 'new serving certificate not loaded; keeping the current one').length, 1, 'one warning, not one per poll')
  t.same(seen, [serial(second)])

  // The key arrives: the pair is whole again and goes out.
  writeFileSync(join(dir, 'tls.key'), third.keyPem)
  await until(() => seen.length === 2, 'the third pair')
  t.equal(seen[1], serial(third))
})

t.test("Kubernetes' ..data symlink swap is noticed", async (t) => {
  // How the kubelet lays out a mounted Secret: tls.crt → ..data/tls.crt,
  // ..data → ..<timestamp>/, and an update swaps ..data atomically.
  const dir = tempDir(t)
  const version = (name: string, leaf: IssuedCert): void => {
    mkdirSync(join(dir, name))
    writePair(join(dir, name), leaf)
  }
  version('..2026_11_22_10_00_00.1', first)
  symlinkSync('..2026_11_22_10_00_00.1', join(dir, '..data'))
  symlinkSync('..data/tls.crt', join(dir, 'tls.crt'))
  symlinkSync('..data/tls.key', join(dir, 'tls.key'))
  const s = source(t, dir, recorder())
  t.equal(serial(await s.ready()), serial(first))
  const seen: string[] = []
  s.onChange((pair) => seen.push(serial(pair)!))

  version('..2026_11_22_11_00_00.2', second)
  symlinkSync('..2026_11_22_11_00_00.2', join(dir, '..data_tmp'))
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
  rmSync(join(dir, '..2026_11_22_10_00_00.1'), { recursive: true })
  await until(() => seen.length === 1, 'the swapped pair')
  t.same(seen, [serial(second)])
  t.equal(serial(s.current()), serial(second))
})

t.test('an expired or not yet valid certificate is refused, even as the first one; ready waits for a valid pair', async (t) => {
  const dir = tempDir(t)
  writePair(dir, generateServingCert({ ca, hosts: ['localhost'], validityMs: -30_000 }))
  const log = recorder()
  const s = source(t, dir, log)
  const refused: string[] = []
  s.onRejected((reason) => refused.push(reason))
  let ready = false
  void s.ready().then(() => (ready = true))
  await until(() => log.lines.some((l) => l.level === 'warn' && /expired at/.test(JSON.stringify(l.obj))), 'the warning')
  t.equal(ready, false, 'an expired pair is never served')
  t.equal(s.current(), undefined)
  writePair(dir, generateServingCert({ ca, hosts: ['localhost'], validityMs: HOUR, issuedAt: Date.now() + HOUR }))
  await until(() => refused.includes('not_yet_valid'), 'the not-yet-valid refusal')
  t.equal(ready, false)
  writePair(dir, first)
  await until(() => ready, 'ready')
  t.equal(serial(s.current()), serial({ certPem: first.certPem, keyPem: first.keyPem }))
})
