// The rolling restarter's watch and Lease (src/kube/csi-restart.ts) through
// the real client-node against the fake API (test/helpers/fake-api.ts). The
// end-to-end suite (test/e2e/csi-restart.e2e.ts) runs it against a real
// kube-apiserver with the driver's CRD.
import t, { type Test } from 'tap'
import { RESTARTED_AT, RESTARTER_READY, RestartController, RETRY_FIRST_MS, startCsiRestarts } from '../../src/kube/csi-restart.ts'
import { startFakeApi, type FakeApi } from '../helpers/fake-api.ts'

type Obj = Record<string, any>
const STATUSES = '/apis/secrets-store.csi.x-k8s.io/v1/secretproviderclasspodstatuses'
const NS = 'shop'

function recorder(): { lines: { level: string; msg: string; obj: Obj }[]; logger: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void } } {
  const lines: { level: string; msg: string; obj: Obj }[] = []
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, msg, obj: obj as Obj })
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } }
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`never: ${what}`)
}

// A status object as the driver writes it (name <pod>-<namespace>-<class>, status.objects id/version).
function podStatus(pod: string, spc: string, versions: Record<string, string>): Obj {
  return {
    apiVersion: 'secrets-store.csi.x-k8s.io/v1',
    kind: 'SecretProviderClassPodStatus',
    metadata: { name: `${pod}-${NS}-${spc}`, namespace: NS },
    status: { podName: pod, secretProviderClassName: spc, mounted: true, objects: Object.entries(versions).map(([id, version]) => ({ id, version })) },
  }
}

async function started(t: Test, api: FakeApi, watchNamespaces?: string[]): Promise<ReturnType<typeof recorder>> {
  const log = recorder()
  const restarts = startCsiRestarts(api.kubeConfig, { logger: log.logger, minIntervalMs: 60_000, namespace: 'vault-injector', podName: 'vault-injector-0', useLeaderElector: true, ...(watchNamespaces ? { watchNamespaces } : {}) })
  t.teardown(() => restarts.stop())
  await until('the restarter ready', () => log.lines.some((l) => l.msg === RESTARTER_READY))
  return log
}

t.test('ready is said only once the list is in and the Lease held; a list refused at first (a new CRD\'s storage) is retried at once', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  api.put(`${STATUSES}/other`, podStatus('other', 'vault-other', { a: '1' }))
  // What kube-apiserver answers for a moment after the CRD is Established.
  api.failNext('GET', STATUSES, 429)
  const log = await started(t, api)
  const warned = log.lines.find((l) => l.level === 'warn')
  t.match(warned, { obj: { retryInMs: RETRY_FIRST_MS } }, 'the first retry comes within a second, not after 10 s')
  const order = log.lines.map((l) => l.msg)
  t.ok(order.indexOf('became leader') < order.indexOf(RESTARTER_READY), 'ready after the Lease is taken')
  t.ok(order.findIndex((m) => m.includes('objects listed')) < order.indexOf(RESTARTER_READY), 'ready after the list')
  t.equal(order.filter((m) => m === RESTARTER_READY).length, 1, 'said once')
  t.equal(api.objects.get('/apis/coordination.k8s.io/v1/namespaces/vault-injector/leases/vault-injector-csi-restart')?.spec.holderIdentity, 'vault-injector-0', 'no holder before: taken on the first round')
})

t.test('a DaemonSet that opts in is rolled as `kubectl rollout restart` rolls it, with an Event naming the object, never a version', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  const ds = api.put(`/apis/apps/v1/namespaces/${NS}/daemonsets/node-agent`, {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'node-agent', namespace: NS, uid: 'ds-uid', annotations: { 'vault-injector.dev/restart-on-secret-change': 'true' } },
    spec: { selector: { matchLabels: { app: 'node-agent' } }, template: { metadata: { labels: { app: 'node-agent' }, annotations: { 'example.com/kept': 'yes' } }, spec: { containers: [{ name: 'agent', image: 'agent:1' }] } } },
  })
  api.put(`/api/v1/namespaces/${NS}/pods/node-agent-7xk2p`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'node-agent-7xk2p', namespace: NS, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'node-agent', uid: ds.metadata.uid, controller: true }] },
  })
  api.put(`${STATUSES}/node-agent-7xk2p-${NS}-vault-agent`, podStatus('node-agent-7xk2p', 'vault-agent', { token: 'hmac-1', ca: 'hmac-c' }))
  await started(t, api)
  api.put(`${STATUSES}/node-agent-7xk2p-${NS}-vault-agent`, podStatus('node-agent-7xk2p', 'vault-agent', { token: 'hmac-2', ca: 'hmac-c' }))
  const path = `/apis/apps/v1/namespaces/${NS}/daemonsets/node-agent`
  await until('the DaemonSet rolled', () => api.objects.get(path)?.spec.template.metadata.annotations[RESTARTED_AT] !== undefined)
  const annotations = api.objects.get(path)!.spec.template.metadata.annotations
  t.match(annotations[RESTARTED_AT], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'RFC 3339 in seconds, as kubectl writes it')
  t.equal(annotations['example.com/kept'], 'yes', 'the template\'s other annotations stay')
  t.ok(api.requests.some((r) => r.method === 'PATCH' && r.path === path), 'a patch of the DaemonSet, not a replace')
  await until('the Event', () => [...api.objects.keys()].some((p) => p.startsWith(`/api/v1/namespaces/${NS}/events/`)))
  const event = [...api.objects].find(([p]) => p.startsWith(`/api/v1/namespaces/${NS}/events/`))![1]
  t.match(event, { reason: 'SecretRotated', involvedObject: { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'node-agent', uid: 'ds-uid' } })
  t.match(event.message, /secret object vault-agent\/token changed/)
  t.notMatch(event.message, /hmac|\bca\b/, 'only the changed object, and no version')
})

t.test('a first sight of a mount (a new pod, or this replica starting) is no rotation; a changed version of a known object is, a new object is not; a follower acts on none', async (t) => {
  const calls: string[] = []
  const api = {
    readPodOwner: async () => (calls.push('readPodOwner'), { kind: 'DaemonSet', name: 'node-agent', controller: true }),
    readReplicaSetOwner: async () => undefined,
    readWorkload: async () => (calls.push('readWorkload'), { metadata: { name: 'node-agent', namespace: NS } }),
    patchTemplateAnnotations: async () => void calls.push('patch'),
    createEvent: async () => void calls.push('event'),
  }
  const controller = new RestartController({ api, logger: recorder().logger, minIntervalMs: 1000 })
  t.same(controller.observe(podStatus('p', 'c', { a: '1' })), [], 'first sight')
  t.same(controller.observe(podStatus('p', 'c', { a: '1', b: '1' })), [], 'an object added to the class')
  t.same(controller.observe(podStatus('p', 'c', { a: '2', b: '1' })), ['a'], 'a changed version')
  t.same(calls, [], 'not leading: nothing read or rolled')
  controller.leading = true
  t.same(controller.observe(podStatus('q', 'c', { a: '9' })), [], 'another pod\'s first sight, while leading')
  t.same(calls, [])
  controller.forget(podStatus('p', 'c', {}))
  t.same(controller.observe(podStatus('p', 'c', { a: '3' })), [], 'a pod status deleted and written again starts afresh')
  t.same(calls, [])
})

t.test('with watchNamespaces (namespaced Roles): one watch per namespace, never the cluster-wide list; ready once each is listed; a workload there is rolled, one elsewhere is never seen', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  const inNamespace = (ns: string): string => `/apis/secrets-store.csi.x-k8s.io/v1/namespaces/${ns}/secretproviderclasspodstatuses`
  for (const ns of [NS, 'other']) {
    api.put(`/apis/apps/v1/namespaces/${ns}/daemonsets/node-agent`, {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'node-agent', namespace: ns, uid: `ds-${ns}`, annotations: { 'vault-injector.dev/restart-on-secret-change': 'true' } },
      spec: { selector: { matchLabels: { app: 'node-agent' } }, template: { metadata: { labels: { app: 'node-agent' } }, spec: { containers: [{ name: 'agent', image: 'agent:1' }] } } },
    })
    api.put(`/api/v1/namespaces/${ns}/pods/node-agent-7xk2p`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'node-agent-7xk2p', namespace: ns, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'node-agent', uid: `ds-${ns}`, controller: true }] },
    })
    const status = podStatus('node-agent-7xk2p', 'vault-agent', { token: 'hmac-1' })
    status.metadata = { name: `node-agent-7xk2p-${ns}-vault-agent`, namespace: ns }
    api.put(`${inNamespace(ns)}/${status.metadata.name}`, status)
  }
  // A second watched namespace (the fake API answers 404 for an empty collection, so it holds one object).
  api.put(`${inNamespace('billing')}/ledger-0-billing-vault-db`, { ...podStatus('ledger-0', 'vault-db', { password: 'hmac-p' }), metadata: { name: 'ledger-0-billing-vault-db', namespace: 'billing' } })
  const log = await started(t, api, [NS, 'billing'])
  t.equal(log.lines.filter((l) => l.msg.includes('objects listed')).length, 2, 'one list per namespace')
  for (const ns of ['other', NS]) {
    const status = podStatus('node-agent-7xk2p', 'vault-agent', { token: 'hmac-2' })
    status.metadata = { name: `node-agent-7xk2p-${ns}-vault-agent`, namespace: ns }
    api.put(`${inNamespace(ns)}/${status.metadata.name}`, status)
  }
  const rolled = (ns: string): boolean => api.objects.get(`/apis/apps/v1/namespaces/${ns}/daemonsets/node-agent`)?.spec.template.metadata.annotations?.[RESTARTED_AT] !== undefined
  await until('the DaemonSet in the watched namespace rolled', () => rolled(NS))
  t.notOk(rolled('other'), 'the one in an unwatched namespace is not (its change came first)')
  t.notOk(api.requests.some((r) => r.path === STATUSES), 'no cluster-wide list or watch, which a namespaced Role would refuse')
  t.notOk(api.requests.some((r) => r.path.startsWith(inNamespace('other'))), 'nothing asked of the unwatched namespace')
})
