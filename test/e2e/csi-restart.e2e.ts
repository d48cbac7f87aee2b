// Rolling restarts on CSI secret rotation, against the e2e API server: the
// driver's SecretProviderClassPodStatus CRD installed, status objects written
// the way the driver writes them (name <pod>-<namespace>-<class>, owned by the
// pod, status.objects id/version), and the webhook's `serve` running as the
// vault-injector ServiceAccount with manifests/base/rbac.yaml and the CSI
// restart component's manifests/csi-restart/restart-rbac.yaml, so RBAC is shown to suffice.
import t from 'tap'
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { RESTARTED_AT, RESTARTER_READY } from '../../src/kube/csi-restart.ts'
import { dryRunCreate, installFixtureCrd, installInjectorIdentity, ROOT, startControlPlane, startInjector, waitFor, type ControlPlane, type Injector } from './harness.ts'

type Obj = Record<string, any>
const NS = 'shop'
const GROUP = 'secrets-store.csi.x-k8s.io'
const MIN_INTERVAL_S = 4
// Once the restarter is ready a roll takes a few API calls (well under a second); this bound is for a loaded CI machine.
const ROLL_WAIT_MS = 20_000

let cp: ControlPlane
let injector: Injector

t.before(async () => {
  cp = await startControlPlane()
  await installFixtureCrd(cp, 'secretproviderclasspodstatuses')
  const kubeconfig = await installInjectorIdentity(cp)
  const objects = KubernetesObjectApi.makeApiClient(cp.kubeConfig)
  for (const doc of parseAllDocuments(readFileSync(join(ROOT, 'manifests/csi-restart/restart-rbac.yaml'), 'utf8'))) await objects.create(doc.toJS() as KubernetesObject)
  await cp.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } })
  // No controller-manager: the namespace's default ServiceAccount is made by hand.
  await cp.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'default' } } })
  injector = await startInjector(cp.dir, {
    KUBECONFIG: kubeconfig,
    AGENT_INJECT_CSI_RESTART_ON_ROTATION: 'true',
    AGENT_INJECT_CSI_RESTART_MIN_INTERVAL_SECONDS: String(MIN_INTERVAL_S),
    AGENT_INJECT_USE_LEADER_ELECTOR: 'true',
    NAMESPACE: 'vault-injector',
    POD_NAME: 'vault-injector-0',
  })
  // The restarter says when it holds its Lease and has listed the status objects
  // (a new CRD's storage refuses lists for a moment; that is retried): from then
  // on the watch delivers every write below in order, so no sleep is needed
  // between a first mount and its rotation.
  await waitFor('the restarter to lead and watch', async () => injector.process.output.join('').includes(RESTARTER_READY), 30_000)
})
t.teardown(async () => {
  await injector?.stop()
  await cp?.stop()
})

const apps = (): AppsV1Api => cp.kubeConfig.makeApiClient(AppsV1Api)
const core = (): CoreV1Api => cp.kubeConfig.makeApiClient(CoreV1Api)
const custom = (): CustomObjectsApi => cp.kubeConfig.makeApiClient(CustomObjectsApi)

const template = (app: string): Obj => ({ metadata: { labels: { app } }, spec: { containers: [{ name: 'app', image: 'registry.example.com/app:1' }] } })

// No controller-manager runs here: the ReplicaSet and pod a Deployment would get are created by hand, owned as the controllers would own them.
async function deploymentWithPod(name: string, optIn: boolean): Promise<{ deployment: Obj; pod: Obj }> {
  const deployment = (await apps().createNamespacedDeployment({ namespace: NS, body: { metadata: { name, ...(optIn ? { annotations: { 'vault-injector.dev/restart-on-secret-change': 'true' } } : {}) }, spec: { selector: { matchLabels: { app: name } }, template: template(name) } } })) as Obj
  const owner = (o: Obj, kind: string): { apiVersion: string; kind: string; name: string; uid: string; controller: boolean; blockOwnerDeletion: boolean } => ({ apiVersion: 'apps/v1', kind, name: o.metadata.name, uid: o.metadata.uid, controller: true, blockOwnerDeletion: true })
  const rs = (await apps().createNamespacedReplicaSet({ namespace: NS, body: { metadata: { name: `${name}-7d4b9c8f6d`, ownerReferences: [owner(deployment, 'Deployment')] }, spec: { selector: { matchLabels: { app: name } }, template: template(name) } } })) as Obj
  const pod = (await core().createNamespacedPod({ namespace: NS, body: { metadata: { name: `${name}-7d4b9c8f6d-x2x9q`, labels: { app: name }, ownerReferences: [owner(rs, 'ReplicaSet')] }, spec: template(name).spec } })) as Obj
  return { deployment, pod }
}

// createOrUpdateSecretProviderClassPodStatus, as the driver does it after a mount.
async function writePodStatus(pod: Obj, spc: string, versions: Record<string, string>): Promise<void> {
  const name = `${pod.metadata.name}-${NS}-${spc}`
  const body = {
    apiVersion: `${GROUP}/v1`,
    kind: 'SecretProviderClassPodStatus',
    metadata: { name, namespace: NS, labels: { 'internal.secrets-store.csi.k8s.io/node-name': 'node-1' }, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid }] },
    status: {
      podName: pod.metadata.name,
      secretProviderClassName: spc,
      mounted: true,
      targetPath: `/var/lib/kubelet/pods/${pod.metadata.uid}/volumes/kubernetes.io~csi/secrets-store-inline/mount`,
      objects: Object.entries(versions).sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, version]) => ({ id, version })),
    },
  }
  try {
    const existing = (await custom().getNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: NS, plural: 'secretproviderclasspodstatuses', name })) as Obj
    await custom().replaceNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: NS, plural: 'secretproviderclasspodstatuses', name, body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion } } })
  } catch {
    await custom().createNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: NS, plural: 'secretproviderclasspodstatuses', body })
  }
}

const restartedAt = async (name: string): Promise<string | undefined> => (await apps().readNamespacedDeployment({ namespace: NS, name })).spec?.template?.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']
const eventsFor = async (name: string): Promise<Obj[]> => ((await core().listNamespacedEvent({ namespace: NS })).items as Obj[]).filter((e) => e.involvedObject.name === name && e.reason === 'SecretRotated')

t.test('an opted-in Deployment is rolled when a mounted object\'s version changes, with an Event naming the object', async (t) => {
  const { pod } = await deploymentWithPod('web', true)
  await writePodStatus(pod, 'vault-db', { 'db-password': 'v1-hmac', 'db-user': 'u1-hmac' })
  await writePodStatus(pod, 'vault-db', { 'db-password': 'v2-hmac', 'db-user': 'u1-hmac' })
  await waitFor('the Deployment to be rolled', async () => (await restartedAt('web')) !== undefined, ROLL_WAIT_MS).catch((error: Error) => {
    throw new Error(`${error.message}\n${injector.process.output.join('').slice(-3000)}`)
  })
  t.match(await restartedAt('web'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'kubectl rollout restart\'s annotation, RFC 3339')
  await waitFor('the Event', async () => (await eventsFor('web')).length === 1)
  const [event] = await eventsFor('web')
  t.match(event, { type: 'Normal', involvedObject: { kind: 'Deployment', name: 'web', apiVersion: 'apps/v1' }, source: { component: 'vault-injector' } })
  t.match(event!.message, /secret object vault-db\/db-password changed/)
  t.notMatch(event!.message, /db-user|v2-hmac/, 'names only the changed object, never a version or value')
  t.notMatch(injector.process.output.join(''), /forbidden/i, 'RBAC allowed every call')
})

t.test('rate-limited: changes within the interval are gathered into one later restart', async (t) => {
  const { pod } = await deploymentWithPod('api', true)
  await writePodStatus(pod, 'vault-api', { key: 'k1' })
  await writePodStatus(pod, 'vault-api', { key: 'k2' })
  await waitFor('the first restart', async () => (await restartedAt('api')) !== undefined, ROLL_WAIT_MS)
  const first = await restartedAt('api')
  await writePodStatus(pod, 'vault-api', { key: 'k3' })
  await writePodStatus(pod, 'vault-api', { key: 'k4' })
  await new Promise((r) => setTimeout(r, 1000))
  t.equal(await restartedAt('api'), first, 'not rolled again within the interval')
  await waitFor('the gathered restart after the interval', async () => (await restartedAt('api')) !== first, (MIN_INTERVAL_S + 20) * 1000)
  const gap = Date.parse((await restartedAt('api'))!) - Date.parse(first!)
  t.ok(gap >= (MIN_INTERVAL_S - 1) * 1000, `the second restart came ${gap} ms after the first`)
  await waitFor('two Events', async () => (await eventsFor('api')).length === 2)
})

t.test('a Deployment that does not opt in is not rolled', async (t) => {
  const { pod } = await deploymentWithPod('batch', false)
  await writePodStatus(pod, 'vault-batch', { token: 't1' })
  await writePodStatus(pod, 'vault-batch', { token: 't2' })
  // The opted-in one written after it is rolled: by then this one has been judged.
  const { pod: other } = await deploymentWithPod('marker', true)
  await writePodStatus(other, 'vault-marker', { a: '1' })
  await writePodStatus(other, 'vault-marker', { a: '2' })
  await waitFor('the marker Deployment to be rolled', async () => (await restartedAt('marker')) !== undefined, ROLL_WAIT_MS)
  t.equal(await restartedAt('batch'), undefined)
  t.same(await eventsFor('batch'), [])
})

t.test('a StatefulSet (the pod\'s direct owner) is rolled too', async (t) => {
  const sts = (await apps().createNamespacedStatefulSet({ namespace: NS, body: { metadata: { name: 'db', annotations: { 'vault-injector.dev/restart-on-secret-change': 'true' } }, spec: { serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: template('db') } } })) as Obj
  const pod = (await core().createNamespacedPod({ namespace: NS, body: { metadata: { name: 'db-0', labels: { app: 'db' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: sts.metadata.uid, controller: true }] }, spec: template('db').spec } })) as Obj
  await writePodStatus(pod, 'vault-db', { 'db-password': 'a' })
  await writePodStatus(pod, 'vault-db', { 'db-password': 'b' })
  await waitFor('the StatefulSet to be rolled', async () => (await apps().readNamespacedStatefulSet({ namespace: NS, name: 'db' })).spec?.template?.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'] !== undefined, ROLL_WAIT_MS)
  await waitFor('its Event', async () => (await eventsFor('db')).length === 1)
  t.match((await eventsFor('db'))[0], { involvedObject: { kind: 'StatefulSet', name: 'db' }, message: /vault-db\/db-password changed \(SecretProviderClass\/object, seen in pod db-0\)/ })
})

t.test('a DaemonSet (the pod\'s direct owner) is rolled as `kubectl rollout restart` does it, rate-limited, each roll with an Event naming the object', async (t) => {
  const name = 'node-agent'
  const ds = (await apps().createNamespacedDaemonSet({
    namespace: NS,
    body: { metadata: { name, annotations: { 'vault-injector.dev/restart-on-secret-change': 'true' } }, spec: { selector: { matchLabels: { app: name } }, template: { ...template(name), metadata: { labels: { app: name }, annotations: { 'example.com/kept': 'yes' } } } } },
  })) as Obj
  // What the DaemonSet controller would create on a node (name <ds>-<5 random>).
  const pod = (await core().createNamespacedPod({ namespace: NS, body: { metadata: { name: `${name}-7xk2p`, labels: { app: name }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name, uid: ds.metadata.uid, controller: true, blockOwnerDeletion: true }] }, spec: { ...template(name).spec, nodeName: 'node-1' } } })) as Obj
  const read = async (): Promise<Obj> => (await apps().readNamespacedDaemonSet({ namespace: NS, name })) as Obj
  await writePodStatus(pod, 'vault-agent', { 'agent-token': 'tok-v1', 'ca-bundle': 'ca-v1' })
  await writePodStatus(pod, 'vault-agent', { 'agent-token': 'tok-v2', 'ca-bundle': 'ca-v1' })
  await waitFor('the DaemonSet to be rolled', async () => (await read()).spec.template.metadata.annotations[RESTARTED_AT] !== undefined, ROLL_WAIT_MS)
  const rolled = await read()
  const first = rolled.spec.template.metadata.annotations[RESTARTED_AT] as string
  t.match(first, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'kubectl.kubernetes.io/restartedAt on the pod template, RFC 3339 as kubectl writes it')
  t.equal(rolled.spec.template.metadata.annotations['example.com/kept'], 'yes', 'the template\'s other annotations stay')
  t.ok(rolled.metadata.generation > ds.metadata.generation, `a template change: generation ${ds.metadata.generation} → ${rolled.metadata.generation}, so the DaemonSet controller replaces its pods`)
  t.equal(rolled.metadata.annotations['vault-injector.dev/restart-on-secret-change'], 'true', 'the opt-in stays')
  t.equal(rolled.metadata.annotations['deprecated.daemonset.template.generation'], String(rolled.metadata.generation), 'the API server counts it as a new template')
  await waitFor('its Event', async () => (await eventsFor(name)).length === 1)
  const [event] = await eventsFor(name)
  t.match(event, { type: 'Normal', reason: 'SecretRotated', involvedObject: { apiVersion: 'apps/v1', kind: 'DaemonSet', name, uid: ds.metadata.uid }, message: /secret object vault-agent\/agent-token changed \(SecretProviderClass\/object, seen in pod node-agent-7xk2p\)/ })
  t.notMatch(event!.message, /ca-bundle|tok-v|ca-v/, 'names the changed object only, never a version')

  // Within the interval: gathered into one later roll.
  await writePodStatus(pod, 'vault-agent', { 'agent-token': 'tok-v2', 'ca-bundle': 'ca-v2' })
  await writePodStatus(pod, 'vault-agent', { 'agent-token': 'tok-v3', 'ca-bundle': 'ca-v2' })
  await waitFor('the gathered roll after the interval', async () => (await read()).spec.template.metadata.annotations[RESTARTED_AT] !== first, (MIN_INTERVAL_S * 1000) + ROLL_WAIT_MS)
  const second = (await read()).spec.template.metadata.annotations[RESTARTED_AT] as string
  const gapMs = Date.parse(second) - Date.parse(first)
  t.ok(gapMs >= (MIN_INTERVAL_S - 1) * 1000, `the second roll came ${gapMs} ms after the first (interval ${MIN_INTERVAL_S} s; the annotation has whole seconds)`)
  await waitFor('a second Event', async () => (await eventsFor(name)).length === 2)
  const messages = (await eventsFor(name)).map((e) => e.message as string).sort()
  t.match(messages.find((m) => m.includes('ca-bundle')), /secret objects vault-agent\/agent-token, vault-agent\/ca-bundle changed/, 'one Event for both changes')
  for (const m of messages) t.notMatch(m, /tok-v|ca-v/, 'no version in an Event')
  t.notMatch(injector.process.output.join(''), /forbidden/i, 'RBAC allowed every call')
})

t.test('every object of manifests/csi-provider and manifests/csi-restart passes the API server with dry run and strict field validation', async (t) => {
  const files = ['csi-provider', 'csi-restart'].flatMap((component) => {
    const dir = join(ROOT, 'manifests', component)
    return (parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as { resources: string[] }).resources.map((file) => join(dir, file))
  })
  for (const file of files) {
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const object = doc.toJS() as KubernetesObject
      // The restart RBAC was created above for real: a dry run of a new name checks the same fields.
      const answer = await dryRunCreate(cp, { ...object, metadata: { ...object.metadata, name: `${object.metadata!.name}-dry` } })
      t.equal(answer.status, 201, `${object.kind} ${object.metadata!.name}: ${answer.status === 201 ? 'accepted' : answer.text}`)
      t.same(answer.warnings, [], `${object.kind} ${object.metadata!.name}: no warnings`)
    }
  }
})
