// Runs the injector's Deployment, as installed in the e2e API server, the way
// a kubelet would run its pods, without containers: each replica is our
// server as a process, started with the container's args and environment
// (downward-API fields filled in), as the pod's ServiceAccount. The account's
// token, the cluster CA and the namespace file are mounted where every pod
// has them, /var/run/secrets/kubernetes.io/serviceaccount, in a private
// mount namespace (unshare), and KUBERNETES_SERVICE_HOST/PORT point at the
// API server: the program finds the cluster exactly as in a pod. The one
// change: the pods share this machine's loopback, so each listens on its own
// port (AGENT_INJECT_LISTEN), and the Service routes to those ports.
import { AppsV1Api, CoreV1Api, KubernetesObjectApi, type KubernetesObject, type V1Container, type V1Deployment, type V1EnvVar, type V1Pod } from '@kubernetes/client-node'
import { spawnSync } from 'node:child_process'
import https from 'node:https'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Fatal, freePort, ROOT, serviceAccountToken, start, waitFor, type ControlPlane, type Process } from './harness.ts'

const SA_DIR = 'secrets/kubernetes.io/serviceaccount'

// Whether this machine lets a test give a process its own mount namespace.
export function canRunPods(): string | undefined {
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'true'], { encoding: 'utf8' })
  return r.status === 0 ? undefined : `unshare --mount is not permitted here (${(r.stderr || r.error?.message || '').trim()}): pods cannot get a service-account mount`
}

export interface Pod {
  name: string
  namespace: string
  port: number
  process: Process
  // The last readiness probe's answer (GET /health/ready over HTTPS, not
  // verified, as the kubelet probes).
  ready(): boolean
  output(): string
  stop(): Promise<void>
}

// The image's ENTRYPOINT (Dockerfile) with the sources in place of dist/.
const ENTRYPOINT = [join(ROOT, 'node_modules/.bin/node'), join(ROOT, 'src/cli.ts')]

function envValue(variable: V1EnvVar, pod: { name: string; namespace: string; serviceAccount: string }): string {
  if (variable.value !== undefined) return variable.value
  const field = variable.valueFrom?.fieldRef?.fieldPath
  switch (field) {
    case 'metadata.name':
      return pod.name
    case 'metadata.namespace':
      return pod.namespace
    case 'spec.serviceAccountName':
      return pod.serviceAccount
    case 'status.podIP':
      return '127.0.0.1'
  }
  throw new Error(`env ${variable.name}: valueFrom ${JSON.stringify(variable.valueFrom)} is not supported by the e2e pod runner`)
}

function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/health/ready', rejectUnauthorized: false, timeout: 2_000 }, (res) => {
      res.resume()
      resolve(res.statusCode === 204 || res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => req.destroy())
  })
}

export async function runPod(cp: ControlPlane, deployment: V1Deployment, name: string): Promise<Pod> {
  const namespace = deployment.metadata!.namespace!
  const spec = deployment.spec!.template.spec!
  const container: V1Container = spec.containers[0]!
  if (container.command) throw new Error('the e2e pod runner runs the image entrypoint; this container replaces it')
  const serviceAccount = spec.serviceAccountName ?? 'default'
  const dir = mkdtempSync(join(cp.dir, `pod-${name}-`))
  const saDir = join(dir, 'run', SA_DIR)
  mkdirSync(saDir, { recursive: true })
  writeFileSync(join(saDir, 'token'), await serviceAccountToken(cp, namespace, serviceAccount))
  writeFileSync(join(saDir, 'ca.crt'), cp.ca.certPem)
  writeFileSync(join(saDir, 'namespace'), namespace)
  mkdirSync(join(dir, 'home'))

  const port = await freePort()
  const env: Record<string, string> = {}
  for (const variable of container.env ?? []) env[variable.name] = envValue(variable, { name, namespace, serviceAccount })
  const api = new URL(cp.apiUrl)
  Object.assign(env, {
    AGENT_INJECT_LISTEN: `127.0.0.1:${port}`,
    KUBERNETES_SERVICE_HOST: api.hostname,
    KUBERNETES_SERVICE_PORT: api.port,
    // No kubeconfig: the in-cluster service account is what it finds.
    KUBECONFIG: '',
    HOME: join(dir, 'home'),
  })
  const args = container.args ?? []
  const proc = start('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /run && exec "$@"', join(dir, 'run'), ...ENTRYPOINT, ...args], env)
  let ready = false
  let stopped = false
  const poll = async (): Promise<void> => {
    while (!stopped && proc.child.exitCode === null && proc.child.signalCode === null) {
      ready = await probe(port)
      await new Promise((r) => setTimeout(r, 500))
    }
    ready = false
  }
  void poll()
  return {
    name,
    namespace,
    port,
    process: proc,
    ready: () => ready,
    output: () => proc.output.join(''),
    stop: async () => {
      stopped = true
      ready = false
      await proc.stop()
    },
  }
}

// The Deployment's replicas as processes, and its Service routed to them.
export async function runDeployment(cp: ControlPlane, namespace: string, deploymentName: string, serviceName: string): Promise<Pod[]> {
  const deployment = await cp.kubeConfig.makeApiClient(AppsV1Api).readNamespacedDeployment({ name: deploymentName, namespace })
  const service = await cp.kubeConfig.makeApiClient(CoreV1Api).readNamespacedService({ name: serviceName, namespace })
  const labels = deployment.spec!.template.metadata?.labels ?? {}
  const selector = service.spec?.selector ?? {}
  const unmatched = Object.entries(selector).filter(([k, v]) => labels[k] !== v)
  if (unmatched.length > 0) throw new Error(`Service ${serviceName} does not select the Deployment's pods: ${JSON.stringify(unmatched)}`)
  const pods: Pod[] = []
  const replicas = deployment.spec!.replicas ?? 1
  for (let i = 0; i < replicas; i++) pods.push(await runPod(cp, deployment, `${deploymentName}-${i}`))
  for (const port of service.spec!.ports ?? []) {
    cp.services.route(service.spec!.clusterIP!, port.port, pods.map((p) => ({ port: p.port, ready: () => p.ready() })))
  }
  return pods
}

// What `kubectl apply` / `helm upgrade` do to the objects: create each, or
// replace it when it exists.
export async function apply(cp: ControlPlane, objects: KubernetesObject[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(cp.kubeConfig)
  for (const object of objects) {
    try {
      await api.create(object)
    } catch {
      const key = { apiVersion: object.apiVersion!, kind: object.kind!, metadata: { name: object.metadata!.name!, ...(object.metadata!.namespace ? { namespace: object.metadata!.namespace } : {}) } }
      const current = await api.read(key)
      await api.replace({ ...object, metadata: { ...object.metadata, resourceVersion: current.metadata!.resourceVersion! } })
    }
  }
}

export function annotatedPod(name: string): V1Pod {
  return {
    metadata: { name, annotations: { 'vault.hashicorp.com/agent-inject': 'true', 'vault.hashicorp.com/role': 'shop', 'vault.hashicorp.com/agent-inject-secret-db': 'secret/data/shop/db' } },
    spec: { containers: [{ name: 'app', image: 'registry.example.com/shop:1' }] },
  }
}

// Pods created one after another until the API server returns one injected:
// with failurePolicy Ignore, pods are admitted without the agent until the
// webhook is reachable and trusted, as in a real cluster.
export async function createUntilInjected(cp: ControlPlane, namespace: string, prefix: string, pods: Pod[]): Promise<{ pod: Record<string, any>; uninjected: number }> {
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  let attempt = 0
  let pod: Record<string, any> | undefined
  await waitFor(`a pod injected (${prefix})`, async () => {
    for (const p of pods) if (p.process.child.exitCode !== null) throw new Fatal(`${p.name} exited: ${p.output()}`)
    pod = (await core.createNamespacedPod({ namespace, body: annotatedPod(`${prefix}-${attempt++}`) })) as Record<string, any>
    return pod.spec.containers.some((c: Record<string, any>) => c.name === 'vault-agent')
  }, 60_000)
  return { pod: pod!, uninjected: attempt - 1 }
}
