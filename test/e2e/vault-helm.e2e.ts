// vault-injector as a drop-in under HashiCorp's vault-helm chart (v0.34.1):
// the chart's injector objects (test/e2e/fixtures/vault-helm-0.34.1-*.yaml)
// installed into the e2e API server, and the chart's Deployment run as it
// would run with injector.image pointing at our image: its args
// (`agent-inject 2>&1`), its environment, its ServiceAccount and nothing but
// the RBAC the chart grants. The webhook is registered by Service, and the
// API server reaches it through the Service's ClusterIP (service-network.ts).
// First the chart's default, one replica (no elector, no Secret access: the
// certificate stays in memory); then `helm upgrade --set injector.replicas=2`
// (the elector on, a Role without Leases: the ConfigMap lock vault-k8s-leader).
// Each time, pods are created until one comes back injected (the chart's
// failurePolicy is Ignore: until the webhook is trusted, pods are admitted
// without the agent, as in a real cluster).
import t from 'tap'
import { CoordinationV1Api, CoreV1Api, type KubernetesObject } from '@kubernetes/client-node'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import tls from 'node:tls'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { ROOT, startControlPlane, waitFor, type ControlPlane } from './harness.ts'
import { apply, canRunPods, createUntilInjected, runDeployment, type Pod } from './workloads.ts'

type Obj = Record<string, any>
const NS = 'vault'
const APP_NS = 'shop'
const FIXTURES = join(ROOT, 'test/e2e/fixtures')
// The chart's startupProbe: initialDelaySeconds 5 + failureThreshold 12 × periodSeconds 5.
const STARTUP_BUDGET_MS = 65_000

const skip = canRunPods()
let cp: ControlPlane
let core: CoreV1Api
let pods: Pod[] = []

function fixture(replicas: number): KubernetesObject[] {
  const text = readFileSync(join(FIXTURES, `vault-helm-0.34.1-replicas-${replicas}.yaml`), 'utf8')
  return parseAllDocuments(text).map((d) => d.toJS() as KubernetesObject).filter((o) => o?.kind)
}

// The certificate a replica presents, verified against ca for the given name.
function presented(port: number, ca: string, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256)
      socket.end()
    })
    socket.on('error', reject)
  })
}

async function exists(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read()
    return true
  } catch {
    return false
  }
}

async function stopPods(): Promise<void> {
  for (const p of pods) await p.stop()
  pods = []
}

t.before(async () => {
  if (skip) return
  cp = await startControlPlane()
  core = cp.kubeConfig.makeApiClient(CoreV1Api)
  for (const name of [NS, APP_NS]) await core.createNamespace({ body: { metadata: { name } } })
  // No controller-manager: the pods' ServiceAccount is created by hand.
  await core.createNamespacedServiceAccount({ namespace: APP_NS, body: { metadata: { name: 'default' } } })
})
t.teardown(async () => {
  await stopPods()
  await cp?.stop()
})

t.test('vault-helm v0.34.1 defaults (one replica): agent-inject 2>&1 runs, the certificate stays in memory, a pod is injected', { skip }, async (t) => {
  await apply(cp, fixture(1))
  pods = await runDeployment(cp, NS, 'vault-agent-injector', 'vault-agent-injector-svc')
  t.equal(pods.length, 1)
  await waitFor('the replica ready, within the chart\'s startupProbe budget', async () => pods.every((p) => p.ready()), STARTUP_BUDGET_MS)
  t.pass('ready: the chart\'s probes (GET /health/ready over HTTPS on the listen port) pass')

  const { pod, uninjected } = await createUntilInjected(cp, APP_NS, 'one-replica', pods)
  t.same(pod.spec.containers.map((c: Obj) => c.name), ['app', 'vault-agent'], `a pod is injected (${uninjected} created uninjected before, failurePolicy Ignore)`)
  t.same(pod.spec.initContainers.map((c: Obj) => c.name), ['vault-agent-init'])
  t.equal(pod.spec.containers[1].image, 'hashicorp/vault:2.0.4', 'AGENT_INJECT_VAULT_IMAGE from the chart is used')
  const service = await core.readNamespacedService({ name: 'vault-agent-injector-svc', namespace: NS })
  t.ok(cp.services.dialled.includes(`${service.spec!.clusterIP}:443`), 'the API server called the webhook at the Service\'s ClusterIP')
  t.notOk(await exists(() => core.readNamespacedSecret({ name: 'vault-injector-certs', namespace: NS })), 'no Secret: the chart grants one replica none')
  const log = pods[0]!.output()
  t.notMatch(log, /"level":50|"level":40[^\n]*forbidden/i, "no RBAC refusal, no error logged")
  t.match(log, /vault-injector \S+ serving AdmissionReviews/, 'it serves')
  t.match(log, /"namespace":"vault","namespaceFrom":"service account","store":"memory"/, 'the namespace read from the service account\'s namespace file; certificates in memory')
})

t.test('helm upgrade --set injector.replicas=2: the elector on, leadership through the ConfigMap vault-k8s-leader under the chart\'s Role, a pod is injected', { skip }, async (t) => {
  await stopPods()
  await apply(cp, fixture(2))
  pods = await runDeployment(cp, NS, 'vault-agent-injector', 'vault-agent-injector-svc')
  t.equal(pods.length, 2)
  await waitFor('both replicas ready, within the chart\'s startupProbe budget', async () => pods.every((p) => p.ready()), STARTUP_BUDGET_MS)
  t.pass('both replicas ready')

  const lock = await core.readNamespacedConfigMap({ name: 'vault-k8s-leader', namespace: NS })
  const holder = JSON.parse(lock.metadata!.annotations!['control-plane.alpha.kubernetes.io/leader']!).holderIdentity
  t.ok(pods.some((p) => p.name === holder), `the ConfigMap vault-k8s-leader names a replica (${holder})`)
  const coordination = cp.kubeConfig.makeApiClient(CoordinationV1Api)
  t.notOk(await exists(() => coordination.readNamespacedLease({ name: 'vault-injector-leader', namespace: NS })), 'no Lease (the chart grants none)')
  t.ok(await exists(() => core.readNamespacedSecret({ name: 'vault-injector-certs', namespace: NS })), 'the leader shares the certificate in the Secret vault-injector-certs, as vault-k8s does')

  const { pod } = await createUntilInjected(cp, APP_NS, 'two-replicas', pods)
  t.same(pod.spec.containers.map((c: Obj) => c.name), ['app', 'vault-agent'], 'a pod is injected')
  // Either replica may answer the API server: both present the Secret's certificate, valid for the Service's name.
  const secret = await core.readNamespacedSecret({ name: 'vault-injector-certs', namespace: NS })
  const ca = Buffer.from(secret.data!['ca.crt']!, 'base64').toString('utf8')
  const served = new X509Certificate(Buffer.from(secret.data!['tls.crt']!, 'base64')).fingerprint256
  for (const p of pods) t.equal(await presented(p.port, ca, 'vault-agent-injector-svc.vault.svc'), served, `${p.name} presents it, verified for vault-agent-injector-svc.vault.svc`)
  for (const p of pods) t.notMatch(p.output(), /"level":50|"level":40[^\n]*forbidden/i, `${p.name}: no RBAC refusal, no error logged`)
})
