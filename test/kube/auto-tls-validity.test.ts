// Auto-TLS keeps what its Secret holds only when it is still good: the leader
// checks the CA (a CA, its own key, time left) and the serving certificate
// (time left beyond the renewal window, signed by the CA, naming the
// Service, its own key), replaces what is not, and logs why, never a key.
// No replica serves a pair whose key does not match. Through the real
// client-node against the fake API (test/helpers/fake-api.ts), as auto-tls.test.ts.
import t, { type Test } from 'tap'
import { X509Certificate } from 'node:crypto'
import { AutoTls } from '../../src/kube/auto-tls/reconcile.ts'
import { secretStore, webhookStore } from '../../src/kube/auto-tls/stores.ts'
import { buildWebhookConfiguration, DEFAULT_WEBHOOK_OPTIONS } from '../../src/kube/webhook-config.ts'
import { generateCA, generateServingCert, type CertificateAuthority } from '../../src/tls/ca.ts'
import { startFakeApi, type FakeApi } from '../helpers/fake-api.ts'
import { manualTimers, type ManualTimers } from '../helpers/manual-timers.ts'

type Obj = Record<string, any>
const NS = 'vault-injector'
const DAY = 24 * 3_600_000
const HOUR = 3_600_000
const SECRET = `/api/v1/namespaces/${NS}/secrets/vault-injector-certs`
const MWC = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/vault-injector'
const HOSTS = ['vault-injector', 'vault-injector.vault-injector.svc']
const b64 = (text: string): string => Buffer.from(text).toString('base64')
const pemOf = (value: string): string => Buffer.from(value, 'base64').toString('utf8')

interface Logged {
  level: string
  msg: string
  obj: Obj
}
interface Stored {
  ca: CertificateAuthority
  certPem: string
  keyPem: string
}

// A good CA and serving pair as the leader would have stored them a moment ago.
function goodPair(): Stored {
  const ca = generateCA({ commonName: 'stored CA', validityMs: 365 * DAY })
  const leaf = generateServingCert({ ca, hosts: HOSTS, validityMs: DAY })
  return { ca, certPem: leaf.certPem, keyPem: leaf.keyPem }
}

// The fake API with that Secret stored and every webhook entry already
// trusting its CA (so nothing waits for a caBundle to spread).
async function cluster(t: Test, stored: Stored): Promise<FakeApi> {
  const config = JSON.parse(JSON.stringify(buildWebhookConfiguration(DEFAULT_WEBHOOK_OPTIONS))) as Obj
  for (const hook of config.webhooks) hook.clientConfig.caBundle = b64(stored.ca.certPem)
  const api = await startFakeApi([config])
  t.teardown(() => api.close())
  api.put(SECRET, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'vault-injector-certs', namespace: NS },
    data: { 'ca.crt': b64(stored.ca.certPem), 'ca.key': b64(stored.ca.keyPem), 'tls.crt': b64(stored.certPem), 'tls.key': b64(stored.keyPem) },
  })
  return api
}

function replica(api: FakeApi, logs: Logged[], nowMs = Date.now(), timers: ManualTimers = manualTimers()): AutoTls {
  const webhooks = webhookStore(api.kubeConfig, 'vault-injector')
  delete webhooks.watch
  const record = (level: string) => (obj: object, msg: string) => void logs.push({ level, msg, obj: obj as Obj })
  return new AutoTls({
    secrets: secretStore(api.kubeConfig, NS),
    webhooks,
    webhookName: 'vault-injector',
    hosts: HOSTS,
    logger: { info: record('info'), warn: record('warn'), error: record('error') },
    now: () => nowMs,
    timers,
  })
}

const secretData = (api: FakeApi): Obj => api.objects.get(SECRET)!.data
const storedCert = (api: FakeApi, key: string): X509Certificate => new X509Certificate(pemOf(secretData(api)[key]))

// Nothing logged holds a private key, in PEM or as the Secret's base64.
function noKeyLogged(t: Test, logs: Logged[], api: FakeApi, ...keyPems: string[]): void {
  const text = JSON.stringify(logs)
  const keys = [...keyPems, pemOf(secretData(api)['tls.key']), pemOf(secretData(api)['ca.key'])]
  t.notMatch(text, /PRIVATE KEY/, 'no key in the logs')
  for (const key of keys) {
    const body = key.replace(/-----[^-]+-----|\s/g, '')
    t.notOk(text.includes(body.slice(0, 40)) || text.includes(b64(key).slice(0, 40)), 'no key body in the logs')
  }
}

// The leader with this Secret: the serving certificate it ends with, and why it made a new one.
async function leaderWith(t: Test, stored: Stored, nowMs = Date.now()): Promise<{ api: FakeApi; logs: Logged[]; served: X509Certificate; timers: ManualTimers; leader: AutoTls; leafReason?: string; caReason?: string }> {
  const api = await cluster(t, stored)
  const logs: Logged[] = []
  const timers = manualTimers()
  const leader = replica(api, logs, nowMs, timers)
  await leader.setLeading(true)
  const served = new X509Certificate((await leader.ready()).certPem)
  t.equal(served.fingerprint256, storedCert(api, 'tls.crt').fingerprint256, 'the leader serves what the Secret now holds')
  const cas = ['ca.crt', 'ca-previous.crt'].filter((key) => secretData(api)[key]).map((key) => storedCert(api, key))
  t.ok(cas.some((ca) => served.verify(ca.publicKey)), 'signed by a CA the Secret holds (the CA, or the one before it while the new one spreads)')
  t.ok(served.checkPrivateKey((await import('node:crypto')).createPrivateKey(pemOf(secretData(api)['tls.key']))), 'with its own key')
  for (const host of HOSTS) t.equal(served.checkHost(host), host, `naming ${host}`)
  noKeyLogged(t, logs, api, stored.keyPem, stored.ca.keyPem)
  const reasonOf = (msg: string): string | undefined => logs.find((l) => l.msg === msg)?.obj.reason
  return { api, logs, served, timers, leader, leafReason: reasonOf('auto-tls: new serving certificate'), caReason: reasonOf('auto-tls: new CA stored') }
}

const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256

t.test('a good CA and serving certificate are kept: nothing new, nothing logged as replaced', async (t) => {
  const stored = goodPair()
  const { served, leafReason, caReason } = await leaderWith(t, stored)
  t.equal(served.fingerprint256, fingerprint(stored.certPem), 'the stored certificate is served')
  t.equal(leafReason, undefined)
  t.equal(caReason, undefined)
})

t.test('an expired serving certificate is replaced', async (t) => {
  const stored = goodPair()
  const leaf = generateServingCert({ ca: stored.ca, hosts: HOSTS, validityMs: DAY, issuedAt: Date.now() - 2 * DAY })
  const { served, leafReason, caReason } = await leaderWith(t, { ...stored, ...leaf })
  t.not(served.fingerprint256, fingerprint(leaf.certPem))
  t.match(leafReason, /^the serving certificate expired at \d{4}-/)
  t.equal(caReason, undefined, 'the CA is kept')
})

t.test('a serving certificate within its renewal window (under a third of a day left) is replaced', async (t) => {
  const stored = goodPair()
  const leaf = generateServingCert({ ca: stored.ca, hosts: HOSTS, validityMs: 4 * HOUR })
  const { served, leafReason } = await leaderWith(t, { ...stored, ...leaf })
  t.not(served.fingerprint256, fingerprint(leaf.certPem))
  t.match(leafReason, /expires at .*, within its renewal window/)
})

t.test('a serving certificate whose names do not cover the Service is replaced', async (t) => {
  const stored = goodPair()
  const leaf = generateServingCert({ ca: stored.ca, hosts: ['vault-injector', 'other.example.com'], validityMs: DAY })
  const { served, leafReason } = await leaderWith(t, { ...stored, ...leaf })
  t.not(served.fingerprint256, fingerprint(leaf.certPem))
  t.match(leafReason, /names \(DNS:vault-injector, DNS:other\.example\.com\) do not cover vault-injector\.vault-injector\.svc$/)
})

t.test('a serving certificate signed by another CA is replaced', async (t) => {
  const stored = goodPair()
  const other = generateCA({ commonName: 'someone else', validityMs: 365 * DAY })
  const leaf = generateServingCert({ ca: other, hosts: HOSTS, validityMs: DAY })
  const { served, leafReason } = await leaderWith(t, { ...stored, ...leaf })
  t.not(served.fingerprint256, fingerprint(leaf.certPem))
  t.match(leafReason, /^the serving certificate is not signed by the CA [0-9A-F:]+$/)
})

t.test('a serving certificate stored with another key is replaced (it would fail every handshake)', async (t) => {
  const stored = goodPair()
  const otherKey = generateServingCert({ ca: stored.ca, hosts: HOSTS, validityMs: DAY }).keyPem
  const { served, leafReason } = await leaderWith(t, { ...stored, keyPem: otherKey })
  t.not(served.fingerprint256, fingerprint(stored.certPem))
  t.equal(leafReason, 'the serving key does not belong to the serving certificate')
})

t.test('a CA stored with another key is replaced; the certificate the new CA signs follows once the caBundle holds it', async (t) => {
  const stored = goodPair()
  const otherKey = generateCA({ commonName: 'other', validityMs: DAY }).keyPem
  const { api, caReason, leafReason, served, timers, leader, logs } = await leaderWith(t, { ...stored, ca: { ...stored.ca, keyPem: otherKey } })
  t.not(storedCert(api, 'ca.crt').fingerprint256, fingerprint(stored.ca.certPem), 'a new CA')
  t.match(caReason, /^the CA key does not belong to the CA certificate [0-9A-F:]+$/)
  t.equal(leafReason, undefined, 'the stored certificate (signed by the old CA certificate, still trusted) is served meanwhile')
  t.equal(served.fingerprint256, fingerprint(stored.certPem))
  t.equal(timers.fire(10_000), 1, 'the trust delay passes')
  await leader.reconcile() // runs after the reconcile the timer queued
  t.ok(storedCert(api, 'tls.crt').verify(storedCert(api, 'ca.crt').publicKey), 'then a serving certificate the new CA signs')
  t.match(logs.find((l) => l.msg === 'auto-tls: new serving certificate')?.obj.reason, /not signed by the CA/)
  noKeyLogged(t, logs, api, otherKey)
})

t.test('a CA certificate that is not a CA is replaced', async (t) => {
  const stored = goodPair()
  const notCa = generateServingCert({ ca: stored.ca, hosts: ['not-a-ca'], validityMs: 365 * DAY })
  const { api, caReason } = await leaderWith(t, { ...stored, ca: { ...stored.ca, certPem: notCa.certPem, keyPem: notCa.keyPem } })
  t.not(storedCert(api, 'ca.crt').fingerprint256, fingerprint(notCa.certPem))
  t.match(caReason, /is not a CA \(basicConstraints\)$/)
})

t.test('an expired CA is replaced (and so is what it signed)', async (t) => {
  const stored = goodPair()
  const { api, caReason, leafReason } = await leaderWith(t, stored, Date.now() + 400 * DAY)
  t.not(storedCert(api, 'ca.crt').fingerprint256, fingerprint(stored.ca.certPem))
  t.match(caReason, /^the CA expired at \d{4}-/)
  t.ok(leafReason, `a new serving certificate: ${leafReason}`)
})

t.test('a replica never serves a pair whose key does not match; it says so once and serves the good pair when the leader stores it', async (t) => {
  const stored = goodPair()
  const otherKey = generateServingCert({ ca: stored.ca, hosts: HOSTS, validityMs: DAY }).keyPem
  const api = await cluster(t, { ...stored, keyPem: otherKey })
  const logs: Logged[] = []
  const follower = replica(api, logs)
  await follower.refresh()
  await follower.refresh()
  t.equal(follower.current(), undefined, 'nothing served')
  t.same(logs.map((l) => [l.level, l.obj.reason]), [['warn', 'the serving key does not belong to the serving certificate']], 'said once')
  noKeyLogged(t, logs, api, otherKey)

  const leader = replica(api, [])
  await leader.setLeading(true)
  await follower.refresh()
  t.equal(follower.current()?.certPem, pemOf(secretData(api)['tls.crt']), 'the replaced pair is served')
})
