// Auto-TLS and leader election through the real client-node against the
// fake API (test/helpers/fake-api.ts).
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { AutoTls, LEASE_NAME, secretStore, webhookStore } from '../../src/kube/auto-tls.ts'
import { LeaderElector, leaseStore } from '../../src/kube/leader.ts'
import { buildWebhookConfiguration, DEFAULT_WEBHOOK_OPTIONS } from '../../src/kube/webhook-config.ts'
import { startFakeApi, type FakeApi } from '../helpers/fake-api.ts'

type Obj = Record<string, any>
const NS = 'vault-injector'
const HOUR = 3_600_000
const quiet = { info() {}, warn() {}, error() {} }
const SECRET = `/api/v1/namespaces/${NS}/secrets/vault-injector-certs`
const MWC = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/vault-injector'

function twoEntryWebhook(): Obj {
  const config = JSON.parse(JSON.stringify(buildWebhookConfiguration(DEFAULT_WEBHOOK_OPTIONS))) as Obj
  config.webhooks.push({ ...config.webhooks[0], name: 'inject-jobs.vault-injector.dev' })
  return config
}

function autoTls(api: FakeApi, now: () => number): AutoTls {
  return new AutoTls({
    secrets: secretStore(api.kubeConfig, NS),
    webhooks: webhookStore(api.kubeConfig, 'vault-injector'),
    webhookName: 'vault-injector',
    hosts: ['vault-injector.vault-injector.svc'],
    logger: quiet,
    now,
  })
}

const pemOf = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8')
const certs = (bundle: string): string[] => pemOf(bundle).match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []

t.test('the leader makes a CA and serving certificate, shares them in a Secret and sets every caBundle', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const leader = autoTls(api, () => Date.now())
  await leader.setLeading(true)
  const pair = await leader.ready()
  const secret = api.objects.get(SECRET)!
  t.same(Object.keys(secret.data).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'])
  const leaf = new X509Certificate(pair.certPem)
  const ca = new X509Certificate(pemOf(secret.data['ca.crt']))
  t.ok(leaf.verify(ca.publicKey), 'served certificate signed by the CA in the Secret')
  t.ok(leaf.checkHost('vault-injector.vault-injector.svc'))
  const hooks = api.objects.get(MWC)!.webhooks
  t.equal(hooks.length, 2)
  for (const hook of hooks) t.equal(hook.clientConfig.caBundle, secret.data['ca.crt'], `${hook.name} has the caBundle`)

  // A follower serves the very same certificate, read from the Secret.
  const follower = autoTls(api, () => Date.now())
  await follower.refresh()
  t.equal((await follower.ready()).certPem, pair.certPem)

  // Nothing to do on the next round: no write.
  const writes = api.requests.filter((r) => r.method !== 'GET').length
  await leader.reconcile()
  t.equal(api.requests.filter((r) => r.method !== 'GET').length, writes, 'a second reconcile changes nothing')
})

t.test('the serving certificate is renewed with a third of its life left; followers pick it up', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  let now = Date.now()
  const leader = autoTls(api, () => now)
  await leader.setLeading(true)
  const first = (await leader.ready()).certPem
  const follower = autoTls(api, () => now)
  await follower.refresh()
  const changes: string[] = []
  follower.onChange((pair) => changes.push(pair.certPem))

  now += 12 * HOUR
  await leader.reconcile()
  t.equal(leader.current()!.certPem, first, 'half its life left: kept')
  now += 5 * HOUR
  await leader.reconcile()
  t.not(leader.current()!.certPem, first, 'under a third left: renewed')
  await follower.refresh()
  t.same(changes, [leader.current()!.certPem], 'the follower swapped to the new certificate')
})

t.test('CA rotation keeps the previous CA in every caBundle, and puts the new CA there before serving its certificates', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  let now = Date.now()
  const leader = autoTls(api, () => now)
  await leader.setLeading(true)
  const oldCa = pemOf(api.objects.get(SECRET)!.data['ca.crt'])
  now += 340 * 24 * HOUR // within a month of the CA's end
  await leader.reconcile()
  const secret = api.objects.get(SECRET)!
  const newCa = pemOf(secret.data['ca.crt'])
  t.not(newCa, oldCa)
  t.equal(pemOf(secret.data['ca-previous.crt']), oldCa)
  for (const hook of api.objects.get(MWC)!.webhooks) {
    const bundle = certs(hook.clientConfig.caBundle)
    t.equal(bundle.length, 2, 'new and previous CA')
    t.equal(bundle[0]!.trim(), newCa.trim())
  }
  const patchIndex = api.requests.findLastIndex((r) => r.method === 'PATCH')
  const secretWrite = api.requests.findLastIndex((r) => r.method === 'PUT' && r.path === SECRET)
  t.ok(patchIndex < secretWrite, 'caBundle patched before the new certificate was stored')
  t.ok(new X509Certificate(leader.current()!.certPem).verify(new X509Certificate(newCa).publicKey), 'served certificate signed by the new CA')
})

t.test('a caBundle patch that races another edit fails on its test op', async (t) => {
  const api = await startFakeApi([twoEntryWebhook()])
  t.teardown(() => api.close())
  const store = webhookStore(api.kubeConfig, 'vault-injector')
  const read = await store.read()
  await store.setCaBundle(read!.resourceVersion, 2, 'AAAA')
  await t.rejects(store.setCaBundle(read!.resourceVersion, 2, 'BBBB'), 'stale resourceVersion is refused')
  t.same(api.objects.get(MWC)!.webhooks.map((w: Obj) => w.clientConfig.caBundle), ['AAAA', 'AAAA'])
})

t.test('leader election on a Lease: one leader, takeover only after expiry, release on stop', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  let now = new Date()
  const events: string[] = []
  const candidate = (identity: string): LeaderElector =>
    new LeaderElector({
      store: leaseStore(api.kubeConfig, NS, LEASE_NAME),
      namespace: NS,
      name: LEASE_NAME,
      identity,
      leaseDurationMs: 15_000,
      now: () => now,
      logger: quiet,
      onChange: (leading) => events.push(`${identity}:${leading}`),
    })
  const a = candidate('pod-a')
  const b = candidate('pod-b')
  t.equal(await a.tryAcquireOrRenew(), true, 'first candidate creates the lease')
  t.equal(await b.tryAcquireOrRenew(), false, 'second candidate follows')
  now = new Date(now.getTime() + 10_000)
  t.equal(await a.tryAcquireOrRenew(), true, 'the holder renews')
  t.equal(await b.tryAcquireOrRenew(), false, 'renewed lease is not taken')
  now = new Date(now.getTime() + 16_000)
  t.equal(await b.tryAcquireOrRenew(), true, 'an expired lease is taken over')
  const lease = api.objects.get(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${LEASE_NAME}`)!
  t.equal(lease.spec.holderIdentity, 'pod-b')
  t.equal(lease.spec.leaseTransitions, 1)
  t.equal(await a.tryAcquireOrRenew(), false, 'the old holder steps down')
  await b.stop()
  t.equal(api.objects.get(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${LEASE_NAME}`)!.spec.holderIdentity, '', 'released')
  t.equal(await a.tryAcquireOrRenew(), true, 'and taken at once by the other')
  t.same(events, ['pod-a:true', 'pod-b:true', 'pod-a:false', 'pod-b:false', 'pod-a:true'])
})
