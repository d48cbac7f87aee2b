// Rolling restarts on CSI secret rotation, against the e2e API server: the
// driver's SecretProviderClassPodStatus CRD installed, status objects written
// the way the driver writes them (name <pod>-<namespace>-<class>, owned by the
// pod, status.objects id/version), and the webhook's `serve` running as the
// vault-injector ServiceAccount with manifests/base/rbac.yaml and the CSI
// component's restart-rbac.yaml, so RBAC is shown to suffice.
import t from 'tap'
import { ApiextensionsV1Api, AppsV1Api, CoreV1Api, CustomObjectsApi, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { installInjectorIdentity, ROOT, startControlPlane, startInjector, waitFor, type ControlPlane, type Injector } from './harness.ts'

type Obj = Record<string, any>
const NS = 'shop'
const GROUP = 'secrets-store.csi.x-k8s.io'
const MIN_INTERVAL_S = 4

let cp: ControlPlane
let injector: Injector

t.before(async () => {
  cp = await startControlPlane()
  const crd = parseAllDocuments(readFileSync(join(ROOT, 'test/e2e/fixtures/secretproviderclasspodstatuses.crd.yaml'), 'utf8'))[0]!.toJS() as Obj
  const ext = cp.kubeConfig.makeApiClient(ApiextensionsV1Api)
  await ext.createCustomResourceDefinition({ body: crd as never })
  await waitFor('the CRD to be established', async () => ((await ext.readCustomResourceDefinition({ name: crd.metadata.name })).status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True'))
  const kubeconfig = await installInjectorIdentity(cp)
  const objects = KubernetesObjectApi.makeApiClient(cp.kubeConfig)
  for (const doc of parseAllDocuments(readFileSync(join(ROOT, 'manifests/csi-provider/restart-rbac.yaml'), 'utf8'))) await objects.create(doc.toJS() as KubernetesObject)
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
  // The watch may fail while the new CRD's storage starts, and is retried: wait until it runs.
  await waitFor('the SecretProviderClassPodStatus watch', async () => injector.process.output.join('').includes('csi restart: watching SecretProviderClassPodStatus objects'), 60_000)
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
  // Let the watch see the first mount: that is no rotation.
  await new Promise((r) => setTimeout(r, 1500))
  t.equal(await restartedAt('web'), undefined, 'a first mount rolls nothing')
  await writePodStatus(pod, 'vault-db', { 'db-password': 'v2-hmac', 'db-user': 'u1-hmac' })
  await waitFor('the Deployment to be rolled', async () => (await restartedAt('web')) !== undefined, 90_000).catch((error: Error) => {
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
  await new Promise((r) => setTimeout(r, 1500))
  await writePodStatus(pod, 'vault-api', { key: 'k2' })
  await waitFor('the first restart', async () => (await restartedAt('api')) !== undefined, 90_000)
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
  await new Promise((r) => setTimeout(r, 1500))
  await writePodStatus(pod, 'vault-batch', { token: 't2' })
  // The opted-in one written after it is rolled: by then this one has been judged.
  const { pod: other } = await deploymentWithPod('marker', true)
  await writePodStatus(other, 'vault-marker', { a: '1' })
  await new Promise((r) => setTimeout(r, 1500))
  await writePodStatus(other, 'vault-marker', { a: '2' })
  await waitFor('the marker Deployment to be rolled', async () => (await restartedAt('marker')) !== undefined, 90_000)
  t.equal(await restartedAt('batch'), undefined)
  t.same(await eventsFor('batch'), [])
})

t.test('a StatefulSet (the pod\'s direct owner) is rolled too', async (t) => {
  const sts = (await apps().createNamespacedStatefulSet({ namespace: NS, body: { metadata: { name: 'db', annotations: { 'vault-injector.dev/restart-on-secret-change': 'true' } }, spec: { serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: template('db') } } })) as Obj
  const pod = (await core().createNamespacedPod({ namespace: NS, body: { metadata: { name: 'db-0', labels: { app: 'db' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: sts.metadata.uid, controller: true }] }, spec: template('db').spec } })) as Obj
  await writePodStatus(pod, 'vault-db', { 'db-password': 'a' })
  await new Promise((r) => setTimeout(r, 1500))
  await writePodStatus(pod, 'vault-db', { 'db-password': 'b' })
  await waitFor('the StatefulSet to be rolled', async () => (await apps().readNamespacedStatefulSet({ namespace: NS, name: 'db' })).spec?.template?.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'] !== undefined, 90_000)
  await waitFor('its Event', async () => (await eventsFor('db')).length === 1)
  t.match((await eventsFor('db'))[0], { involvedObject: { kind: 'StatefulSet', name: 'db' }, message: /vault-db\/db-password changed \(SecretProviderClass\/object, seen in pod db-0\)/ })
})

// POST with the admin credentials (as manifests.e2e.ts does for the base).
async function post(path: string, body: unknown): Promise<{ status: number; text: string; warnings: string[] }> {
  const options: https.RequestOptions = { method: 'POST', headers: { 'content-type': 'application/json' } }
  await cp.kubeConfig.applyToHTTPSOptions(options)
  return new Promise((resolve, reject) => {
    const req = https.request(`${cp.apiUrl}${path}`, options, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, warnings: res.headers.warning === undefined ? [] : [res.headers.warning].flat() }))
    })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

t.test('every object of manifests/csi-provider passes the API server with dry run and strict field validation', async (t) => {
  const PATHS: Record<string, [string, string, boolean]> = {
    ServiceAccount: ['/api/v1', 'serviceaccounts', true],
    ClusterRole: ['/apis/rbac.authorization.k8s.io/v1', 'clusterroles', false],
    ClusterRoleBinding: ['/apis/rbac.authorization.k8s.io/v1', 'clusterrolebindings', false],
    Role: ['/apis/rbac.authorization.k8s.io/v1', 'roles', true],
    RoleBinding: ['/apis/rbac.authorization.k8s.io/v1', 'rolebindings', true],
    DaemonSet: ['/apis/apps/v1', 'daemonsets', true],
  }
  const dir = join(ROOT, 'manifests/csi-provider')
  const files = (parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as { resources: string[] }).resources
  for (const file of files) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const object = doc.toJS() as KubernetesObject
      const [prefix, plural, namespaced] = PATHS[object.kind!]!
      // The restart RBAC was created above for real: a dry run of a new name checks the same fields.
      const body = { ...object, metadata: { ...object.metadata, name: `${object.metadata!.name}-dry` } }
      const answer = await post(`${prefix}${namespaced ? `/namespaces/${object.metadata!.namespace}` : ''}/${plural}?dryRun=All&fieldValidation=Strict`, body)
      t.equal(answer.status, 201, `${object.kind} ${object.metadata!.name}: ${answer.status === 201 ? 'accepted' : answer.text}`)
      t.same(answer.warnings, [], `${object.kind} ${object.metadata!.name}: no warnings`)
    }
  }
})
