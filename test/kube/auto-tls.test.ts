// Auto-TLS through the real client-node against the fake API
// (test/helpers/fake-api.ts): the Secret every replica serves from, the
// caBundle of every webhook entry, renewal, CA rotation without a moment
// where the served certificate is untrusted, racing and stale leaders, a lost
// Secret, a recreated configuration, retries, and the wiring `serve` uses.
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultSettings } from '../../src/settings.ts'
import { autoTlsHosts, createAutoTlsSource } from '../../src/kube/auto-tls.ts'
import { bundleCerts } from '../../src/kube/auto-tls/certificates.ts'
import { AutoTls } from '../../src/kube/auto-tls/reconcile.ts'
import { secretStore, webhookStore, type SecretStore } from '../../src/kube/auto-tls/stores.ts'
import { LEASE_NAME } from '../../src/kube/names.ts'
import { buildWebhookConfiguration, DEFAULT_WEBHOOK_OPTIONS } from '../../src/kube/webhook-config.ts'
import { generateCA, generateServingCert } from '../../src/tls/ca.ts'
import { startFakeApi, type FakeApi } from '../helpers/fake-api.ts'
import { manualTimers, type ManualTimers } from '../helpers/manual-timers.ts'

type Obj = Record<string, any>
const NS = 'vault-injector'
const DAY = 24 * 3_600_000
const HOUR = 3_600_000
const quiet = { info() {}, warn() {}, error() {} }
const SECRET = `/api/v1/namespaces/${NS}/secrets/vault-injector-certs`
const MWC = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/vault-injector'
const LEASE = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${LEASE_NAME}`
const HOSTS = ['vault-injector.vault-injector.svc']

function twoEntryWebhook(): Obj {
  const config = JSON.parse(JSON.stringify(buildWebhookConfiguration(DEFAULT_WEBHOOK_OPTIONS))) as Obj
  config.webhooks.push({ ...config.webhooks[0], name: 'inject-jobs.vault-injector.dev' })
  return config
}

function autoTls(api: FakeApi, clock: { ms: number }, extra: { secrets?: SecretStore; timers?: ManualTimers; watch?: boolean } = {}): AutoTls {
  const webhooks = webhookStore(api.kubeConfig, 'vault-injector')
  if (!extra.watch) delete webhooks.watch
  return new AutoTls({
    secrets: extra.secrets ?? secretStore(api.kubeConfig, NS),
    webhooks,
    webhookName: 'vault-injector',
    hosts: HOSTS,
    logger: quiet,
    now: () => clock.ms,
    timers: extra.timers ?? manualTimers(),
  })
}

const pemOf = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8')
const fingerprints = (pem: string): string[] => bundleCerts(pem).map((c) => c.fingerprint256)
const secretCert = (api: FakeApi, key: string): X509Certificate => new X509Certificate(pemOf(api.objects.get(SECRET)!.data[key]))
const hooks = (api: FakeApi): Obj[] => api.objects.get(MWC)!.webhooks

// Records every moment (after any stored change) where a webhook entry with a
// caBundle does not trust the certificate the Secret tells replicas to serve.
function watchTrust(api: FakeApi): string[] {
  const violations: string[] = []
  api.onChange(() => {
    const secret = api.objects.get(SECRET)
    const config = api.objects.get(MWC)
    if (!secret?.data?.['tls.crt'] || !config) return
    const leaf = new X509Certificate(pemOf(secret.data['tls.crt']))
    for (const hook of config.webhooks) {
      if (!hook.clientConfig.caBundle) continue
      if (!bundleCerts(pemOf(hook.clientConfig.caBundle)).some((ca) => leaf.verify(ca.publicKey))) violations.push(`${hook.name} does not trust the served certificate`)
    }
  })
  return violations
}

t.test('the leader makes a CA and serving certificate, shares them in a Secret and sets every caBundle', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const clock = { ms: Date.now() }
  const leader = autoTls(api, clock)
  await leader.setLeading(true)
  const pair = await leader.ready()
  const secret = api.objects.get(SECRET)!
  t.same(Object.keys(secret.data).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'])
  const leaf = new X509Certificate(pair.certPem)
  const ca = secretCert(api, 'ca.crt')
  t.ok(leaf.verify(ca.publicKey), 'served certificate signed by the CA in the Secret')
  t.ok(leaf.checkHost('vault-injector.vault-injector.svc'))
  t.ok(new Date(leaf.validTo).getTime() - Date.now() <= DAY, 'short-lived: a day at most')
  t.equal(hooks(api).length, 2)
  for (const hook of hooks(api)) t.same(fingerprints(pemOf(hook.clientConfig.caBundle)), [ca.fingerprint256], `${hook.name} trusts the CA`)

  // A follower serves the very same certificate, read from the Secret.
  const follower = autoTls(api, clock)
  await follower.refresh()
  t.equal((await follower.ready()).certPem, pair.certPem)

  const writes = api.requests.filter((r) => r.method !== 'GET').length
  await leader.reconcile()
  t.equal(api.requests.filter((r) => r.method !== 'GET').length, writes, 'a second reconcile changes nothing')
})

t.test('the serving certificate is renewed with a third of its life left; followers pick it up', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const violations = watchTrust(api)
  const clock = { ms: Date.now() }
  const leader = autoTls(api, clock)
  await leader.setLeading(true)
  const first = (await leader.ready()).certPem
  const follower = autoTls(api, clock)
  await follower.refresh()
  const changes: string[] = []
  follower.onChange((pair) => changes.push(pair.certPem))

  clock.ms += 12 * HOUR
  await leader.reconcile()
  t.equal(leader.current()!.certPem, first, 'half its life left: kept')
  clock.ms += 5 * HOUR
  await leader.reconcile()
  t.not(leader.current()!.certPem, first, 'under a third left: renewed')
  await follower.refresh()
  t.same(changes, [leader.current()!.certPem], 'the follower swapped to the new certificate')
  t.same(violations, [])
})

t.test('CA rotation: the new CA is stored, then trusted by every entry, then used; the previous CA stays trusted until it expires', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  // A CA with a day and a half left, its certificate served and trusted (as an earlier leader left them).
  const oldCaPair = generateCA({ commonName: 'old CA', validityMs: 1.5 * DAY })
  const oldLeafPair = generateServingCert({ ca: oldCaPair, hosts: HOSTS, validityMs: DAY })
  const b64 = (text: string): string => Buffer.from(text).toString('base64')
  await secretStore(api.kubeConfig, NS).write({ 'ca.crt': b64(oldCaPair.certPem), 'ca.key': b64(oldCaPair.keyPem), 'tls.crt': b64(oldLeafPair.certPem), 'tls.key': b64(oldLeafPair.keyPem) })
  const store = webhookStore(api.kubeConfig, 'vault-injector')
  await store.setCaBundle((await store.read())!.resourceVersion, 2, b64(oldCaPair.certPem))
  const violations = watchTrust(api)
  const oldCa = new X509Certificate(oldCaPair.certPem)

  const clock = { ms: Date.now() }
  const timers = manualTimers()
  const leader = autoTls(api, clock, { timers })
  const follower = autoTls(api, clock)
  await follower.refresh()
  const mark = api.requests.length
  await leader.setLeading(true)
  const newCa = secretCert(api, 'ca.crt')
  t.not(newCa.fingerprint256, oldCa.fingerprint256, 'a new CA: the old one has less than a month left')
  t.equal(secretCert(api, 'ca-previous.crt').fingerprint256, oldCa.fingerprint256, 'the old one kept as previous')
  for (const hook of hooks(api)) t.same(fingerprints(pemOf(hook.clientConfig.caBundle)), [newCa.fingerprint256, oldCa.fingerprint256], `${hook.name}: new and previous CA`)
  t.equal(leader.current()!.certPem, oldLeafPair.certPem, 'the current certificate is still served while the API servers pick up the bundle')
  t.ok(timers.pending().some((p) => p.ms === 10_000), 'a follow-up reconcile is scheduled')

  timers.fire(10_000)
  await leader.reconcile() // after the scheduled one
  t.ok(new X509Certificate(leader.current()!.certPem).verify(newCa.publicKey), 'now serving a certificate signed by the new CA')
  const writes = api.requests.slice(mark).filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path === SECRET ? 'secret' : 'webhook'}`)
  t.same(writes, ['PUT secret', 'PATCH webhook', 'PUT secret'], 'CA stored, bundle patched, certificate stored: in that order')
  await follower.refresh()
  t.equal(follower.current()!.certPem, leader.current()!.certPem, 'the follower follows')

  clock.ms += 2 * DAY // the old CA has expired
  await leader.reconcile()
  t.notOk(api.objects.get(SECRET)!.data['ca-previous.crt'], 'expired previous CA dropped from the Secret')
  for (const hook of hooks(api)) t.same(fingerprints(pemOf(hook.clientConfig.caBundle)), [newCa.fingerprint256], `${hook.name}: only the new CA`)
  t.same(violations, [], 'no stored state where a webhook entry distrusted the served certificate')
})

t.test('a CA near its end with no usable certificate is replaced and used at once (nothing to wait for)', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const violations = watchTrust(api)
  const clock = { ms: Date.now() }
  const leader = autoTls(api, clock)
  await leader.setLeading(true)
  const oldCa = secretCert(api, 'ca.crt')
  clock.ms += 340 * DAY // the CA has under a month left; its day-long certificate expired long ago
  await leader.reconcile()
  const newCa = secretCert(api, 'ca.crt')
  t.not(newCa.fingerprint256, oldCa.fingerprint256)
  t.ok(new X509Certificate(leader.current()!.certPem).verify(newCa.publicKey))
  for (const hook of hooks(api)) t.same(fingerprints(pemOf(hook.clientConfig.caBundle)), [newCa.fingerprint256, oldCa.fingerprint256])
  t.same(violations, [])
})

t.test('two replicas leading at once (no elector, or a takeover race) converge on one CA', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const violations = watchTrust(api)
  const clock = { ms: Date.now() }
  const a = autoTls(api, clock)
  const b = autoTls(api, clock)
  const first = await Promise.allSettled([a.reconcile(), b.reconcile()])
  t.ok(first.some((r) => r.status === 'fulfilled'), 'one of them got its writes in')
  await a.reconcile()
  await b.reconcile()
  await a.refresh()
  await b.refresh()
  t.equal(a.current()!.certPem, b.current()!.certPem, 'both serve the same certificate')
  const ca = secretCert(api, 'ca.crt')
  t.ok(new X509Certificate(a.current()!.certPem).verify(ca.publicKey))
  for (const hook of hooks(api)) t.ok(fingerprints(pemOf(hook.clientConfig.caBundle)).includes(ca.fingerprint256), `${hook.name} trusts the stored CA`)
  t.same(violations, [])
})

t.test('a stale leader (an old view of the Secret) does not take a newer CA out of the bundle', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const clock = { ms: Date.now() }
  const leader = autoTls(api, clock)
  await leader.setLeading(true)
  const real = secretStore(api.kubeConfig, NS)
  const stale = (await real.read())!
  clock.ms += 340 * DAY
  await leader.reconcile() // rotates: bundle = new + old
  const newCa = secretCert(api, 'ca.crt')

  // The stale leader still reads the Secret as it was; its writes conflict.
  const staleSecrets: SecretStore = { read: async () => stale, write: (data, rv) => real.write(data, rv) }
  // Its clock is where the old state was current, so it sees nothing to rotate.
  const staleLeader = autoTls(api, { ms: Date.now() }, { secrets: staleSecrets })
  await staleLeader.reconcile()
  t.ok(api.requests.at(-1)!.method === 'PATCH', 'it did write the bundle (its view differs)')
  for (const hook of hooks(api)) t.ok(fingerprints(pemOf(hook.clientConfig.caBundle)).includes(newCa.fingerprint256), `${hook.name} still trusts the new CA`)
})

t.test('a deleted Secret: the leader starts over, and the CA the webhook trusted stays trusted meanwhile', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const clock = { ms: Date.now() }
  const leader = autoTls(api, clock)
  const follower = autoTls(api, clock)
  await leader.setLeading(true)
  await follower.refresh()
  const oldCa = secretCert(api, 'ca.crt')
  api.remove(SECRET)
  await leader.reconcile()
  const newCa = secretCert(api, 'ca.crt')
  t.not(newCa.fingerprint256, oldCa.fingerprint256, 'a new CA (the old key is gone)')
  for (const hook of hooks(api)) {
    const trusted = fingerprints(pemOf(hook.clientConfig.caBundle))
    t.ok(trusted.includes(oldCa.fingerprint256), `${hook.name} still trusts the old CA: the follower serves a certificate it signed`)
    t.ok(trusted.includes(newCa.fingerprint256), `${hook.name} trusts the new CA`)
  }
  t.ok(new X509Certificate(follower.current()!.certPem).verify(oldCa.publicKey), 'the follower has not refreshed yet')
})

t.test('a failed caBundle patch is retried; a recreated configuration gets its caBundle back through the watch', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const clock = { ms: Date.now() }
  const timers = manualTimers()
  const leader = autoTls(api, clock, { timers, watch: true })
  t.teardown(() => leader.close())
  api.failNext('PATCH', MWC, 500)
  await leader.setLeading(true)
  t.notOk(hooks(api)[0]!.clientConfig.caBundle, 'first patch failed')
  t.ok(timers.pending().some((p) => p.ms === 5_000), 'a retry is scheduled')
  timers.fire(5_000)
  await leader.reconcile()
  const ca = secretCert(api, 'ca.crt')
  for (const hook of hooks(api)) t.same(fingerprints(pemOf(hook.clientConfig.caBundle)), [ca.fingerprint256], `${hook.name} set on retry`)

  // kubectl delete + apply: the configuration comes back without a caBundle.
  api.remove(MWC)
  api.put(MWC, twoEntryWebhook())
  for (let i = 0; i < 500 && !hooks(api)[1]?.clientConfig.caBundle; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  for (const hook of hooks(api)) t.same(fingerprints(pemOf(hook.clientConfig.caBundle ?? '')), [ca.fingerprint256], `${hook.name} restored from the watch event`)
  const watches = api.requests.filter((r) => r.path === '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations')
  t.ok(watches.length > 0 && watches.every((r) => new URLSearchParams(r.query).get('fieldSelector') === 'metadata.name=vault-injector'), 'list and watch name the one object (RBAC resourceNames allow it)')
})

t.test('a caBundle patch that races another edit fails on its test op', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const store = webhookStore(api.kubeConfig, 'vault-injector')
  const read = await store.read()
  await store.setCaBundle(read!.resourceVersion, 2, 'AAAA')
  await t.rejects(store.setCaBundle(read!.resourceVersion, 2, 'BBBB'), 'stale resourceVersion is refused')
  t.same(hooks(api).map((w: Obj) => w.clientConfig.caBundle), ['AAAA', 'AAAA'])
})

t.test('hosts: AGENT_INJECT_TLS_AUTO_HOSTS, else the Service names in the injector\'s namespace', async (t) => {
  t.same(autoTlsHosts({ tlsAutoHosts: ' a.example , b ', namespace: 'x' }), ['a.example', 'b'])
  t.same(autoTlsHosts({ tlsAutoHosts: '', namespace: 'ops' }), ['vault-injector', 'vault-injector.ops', 'vault-injector.ops.svc', 'vault-injector.ops.svc.cluster.local'])
})

t.test('what serve uses: two replicas with the elector serve one certificate; shutdown releases the Lease', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-kubeconfig-'))
  writeFileSync(join(dir, 'config'), api.kubeConfig.exportConfig())
  process.env.KUBECONFIG = join(dir, 'config')
  const settings = (podName: string) => ({ ...defaultSettings(), tlsAuto: 'vault-injector', useLeaderElector: true, namespace: NS, podName })
  const a = createAutoTlsSource(settings('pod-a'), quiet)
  const b = createAutoTlsSource(settings('pod-b'), quiet)
  const [pairA, pairB] = await Promise.all([a.ready(), b.ready()])
  t.equal(pairA.certPem, pairB.certPem, 'the same certificate on both replicas')
  const holder = api.objects.get(LEASE)!.spec.holderIdentity
  t.ok(['pod-a', 'pod-b'].includes(holder), `the Lease names a replica (${holder})`)
  const [leader, other] = holder === 'pod-a' ? [a, b] : [b, a]
  await leader.close()
  t.equal(api.objects.get(LEASE)!.spec.holderIdentity, '', 'released on shutdown')
  await other.close()
})

t.test('what serve uses without the elector (one replica, as vault-helm runs it): the certificate stays in memory, no Secret is read or written', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-kubeconfig-'))
  writeFileSync(join(dir, 'config'), api.kubeConfig.exportConfig())
  process.env.KUBECONFIG = join(dir, 'config')
  const source = createAutoTlsSource({ ...defaultSettings(), tlsAuto: 'vault-injector', namespace: NS }, quiet)
  t.teardown(() => source.close())
  const pair = await source.ready()
  await waitUntil(() => hooks(api).every((h) => h.clientConfig.caBundle))
  t.ok(hooks(api).every((h) => fingerprints(pemOf(h.clientConfig.caBundle)).includes(new X509Certificate(pair.caPem!).fingerprint256)), 'every entry trusts the CA held in memory')
  t.same(api.requests.filter((r) => r.path.includes('/secrets') || r.path.includes('/leases') || r.path.includes('/configmaps')), [], 'no Secret, Lease or ConfigMap request')
})

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20))
}

t.test('the elector without Lease rights (vault-helm\'s Role): leadership through the ConfigMap vault-k8s-leader, the certificate shared in the Secret', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-kubeconfig-'))
  writeFileSync(join(dir, 'config'), api.kubeConfig.exportConfig())
  process.env.KUBECONFIG = join(dir, 'config')
  // RBAC refuses every Lease request, as it does under vault-helm's Role.
  api.failNext('GET', LEASE, 403, 10)
  const settings = (podName: string) => ({ ...defaultSettings(), tlsAuto: 'vault-injector', useLeaderElector: true, namespace: NS, podName })
  const a = createAutoTlsSource(settings('pod-a'), quiet)
  const b = createAutoTlsSource(settings('pod-b'), quiet)
  const [pairA, pairB] = await Promise.all([a.ready(), b.ready()])
  t.equal(pairA.certPem, pairB.certPem, 'the same certificate on both replicas')
  const lock = api.objects.get(`/api/v1/namespaces/${NS}/configmaps/vault-k8s-leader`)
  const holder = JSON.parse(lock!.metadata.annotations['control-plane.alpha.kubernetes.io/leader']).holderIdentity
  t.ok(['pod-a', 'pod-b'].includes(holder), `the ConfigMap lock names a replica (${holder})`)
  t.notOk(api.objects.has(LEASE), 'no Lease was created')
  t.ok(api.objects.has(SECRET), 'the certificate is shared in the Secret')
  await a.close()
  await b.close()
})
