// The end-to-end harness: a real etcd and kube-apiserver (as controller-
// runtime's envtest runs them: no kubelet, pods are stored, not run), the real
// vault-injector server as a child process, and a real Vault dev server.
// Certificates and the kubeconfig come from the project's own src/tls/ca.ts.
import { ApiextensionsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node'
import { spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync, X509Certificate } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import net from 'node:net'
import { tmpdir } from 'node:os'
import tls from 'node:tls'
import { dirname, join } from 'node:path'
import { parseAllDocuments, stringify } from 'yaml'
import { generateCA, generateClientCert, generateServingCert, type CertificateAuthority } from '../../src/tls/ca.ts'
import { SERVICE_CIDR, startServiceNetwork, type ServiceNetwork } from './service-network.ts'

export const ROOT = new URL('../../', import.meta.url).pathname
export const BIN = process.env.VAULT_INJECTOR_E2E_BIN ?? join(process.env.VAULT_INJECTOR_E2E_CACHE ?? join(process.env.HOME ?? '/root', '.cache/vault-injector-e2e'), 'bin')
const HOUR = 3_600_000

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

// A port P with P + 1 free as well, on `host` (both held at once while checked).
async function freePortPair(host = '127.0.0.1'): Promise<number> {
  const listen = (port: number): Promise<net.Server | undefined> =>
    new Promise((resolve) => {
      const server = net.createServer()
      server.once('error', () => resolve(undefined))
      server.listen(port, host, () => resolve(server))
    })
  const close = (server: net.Server | undefined): Promise<void> => new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()))
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await listen(0)
    const address = first?.address()
    const port = typeof address === 'object' && address ? address.port : 0
    const second = port > 0 && port < 65535 ? await listen(port + 1) : undefined
    await close(first)
    await close(second)
    if (second) return port
  }
  throw new Error(`no two free consecutive ports on ${host}`)
}

// Thrown by a check when waiting longer cannot help (the process died).
export class Fatal extends Error {}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError = ''
  while (Date.now() < deadline) {
    try {
      if (await check()) return
    } catch (error) {
      if (error instanceof Fatal) throw error
      lastError = (error as Error).message
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${lastError}` : ''}`)
}

export function httpsGet(url: string, ca: string, options: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, ...options }, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
  })
}

// The certificate a TLS server presents, as a fingerprint.
export function servedFingerprint(url: string, ca: string): Promise<string> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), ca }, () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.end()
    })
    socket.on('error', reject)
  })
}

export function fingerprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256
}

export interface Process {
  child: ChildProcess
  output: string[]
  stop(): Promise<void>
}

// Every child still running when this process ends is killed: a test that
// times out or is interrupted must not leave an etcd or an API server behind.
// On a timeout tap sends SIGALRM (it then prints which handles were open and
// SIGKILLs this process, which no handler sees), so the children go then.
const running = new Set<ChildProcess>()
const tempDirs = new Set<string>()
const cleanups = new Set<() => void>()
const killAll = (): void => {
  // First what a test set up outside its children (containers, mounts): the
  // temporary folders are removed last, never under a live mount.
  for (const cleanUp of cleanups) {
    try {
      cleanUp()
    } catch {
      // the rest still runs
    }
  }
  cleanups.clear()
  for (const child of running) child.kill('SIGKILL')
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
}
process.on('exit', killAll)
process.on('SIGALRM', killAll)
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    killAll()
    process.exit(128 + (signal === 'SIGTERM' ? 15 : 2))
  })
}

// Runs `cleanUp` (synchronous) if this process ends before the returned
// function is called: on exit, tap's timeout (SIGALRM), SIGTERM or SIGINT.
export function atAbort(cleanUp: () => void): () => void {
  cleanups.add(cleanUp)
  return () => cleanups.delete(cleanUp)
}

export function start(command: string, args: string[], env: Record<string, string> = {}): Process {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  child.once('exit', () => running.delete(child))
  const output: string[] = []
  const keep = (chunk: Buffer): void => {
    output.push(chunk.toString('utf8'))
    if (output.length > 400) output.splice(0, output.length - 400)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  return {
    child,
    output,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        const force = setTimeout(() => child.kill('SIGKILL'), 10_000)
        child.once('exit', () => {
          clearTimeout(force)
          resolve()
        })
        child.kill('SIGTERM')
      }),
  }
}

export interface ControlPlane {
  dir: string
  ca: CertificateAuthority
  apiUrl: string
  kubeconfigPath: string
  kubeConfig: KubeConfig
  // Routes Service ClusterIPs to processes on loopback (service-network.ts).
  services: ServiceNetwork
  stop(): Promise<void>
}

// etcd + kube-apiserver on loopback ports, in a temporary directory.
export async function startControlPlane(): Promise<ControlPlane> {
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-e2e-'))
  tempDirs.add(dir)
  const ca = generateCA({ commonName: 'e2e cluster CA', validityMs: 24 * HOUR })
  const serving = generateServingCert({ ca, hosts: ['127.0.0.1', 'localhost', 'kubernetes', 'kubernetes.default.svc'], validityMs: 24 * HOUR })
  const admin = generateClientCert({ ca, commonName: 'e2e-admin', organizations: ['system:masters'], validityMs: 24 * HOUR })
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const files = {
    ca: join(dir, 'ca.crt'),
    cert: join(dir, 'apiserver.crt'),
    key: join(dir, 'apiserver.key'),
    saPub: join(dir, 'sa.pub'),
    saKey: join(dir, 'sa.key'),
  }
  writeFileSync(files.ca, ca.certPem)
  writeFileSync(files.cert, serving.certPem)
  writeFileSync(files.key, serving.keyPem)
  writeFileSync(files.saPub, sa.publicKey.export({ type: 'spki', format: 'pem' }))
  writeFileSync(files.saKey, sa.privateKey.export({ type: 'pkcs8', format: 'pem' }))

  const services = await startServiceNetwork(dir)
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()]
  const etcd = start(join(BIN, 'etcd'), [
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
    `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
    `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
    '--unsafe-no-fsync',
  ])
  const apiserver = start(join(BIN, 'kube-apiserver'), [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${apiPort}`,
    `--cert-dir=${join(dir, 'certs')}`,
    `--tls-cert-file=${files.cert}`,
    `--tls-private-key-file=${files.key}`,
    `--client-ca-file=${files.ca}`,
    `--service-account-issuer=https://kubernetes.default.svc`,
    `--service-account-key-file=${files.saPub}`,
    `--service-account-signing-key-file=${files.saKey}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    // No kube-controller-manager and a loopback address: no endpoint reconciling.
    '--endpoint-reconciler-type=none',
    '--authorization-mode=RBAC',
    '--enable-admission-plugins=MutatingAdmissionWebhook,ServiceAccount',
    '--allow-privileged=true',
    // Logs and exec reach a kubelet at its node address (test/kubelet): there is no DNS for node names.
    '--kubelet-preferred-address-types=InternalIP',
    '--disable-http2-serving',
    services.apiserverFlag,
    '--v=0',
  ])
  const apiUrl = `https://127.0.0.1:${apiPort}`
  const kubeconfigPath = join(dir, 'kubeconfig')
  const adminUser = { 'client-certificate-data': Buffer.from(admin.certPem).toString('base64'), 'client-key-data': Buffer.from(admin.keyPem).toString('base64') }
  writeKubeconfig(kubeconfigPath, { apiUrl, ca }, 'admin', adminUser)
  const kubeConfig = new KubeConfig()
  kubeConfig.loadFromFile(kubeconfigPath)
  const stop = async (): Promise<void> => {
    await apiserver.stop()
    await etcd.stop()
    await services.close()
    rmSync(dir, { recursive: true, force: true })
    tempDirs.delete(dir)
  }
  try {
    await waitFor('kube-apiserver /readyz', async () => {
      if (apiserver.child.exitCode !== null) throw new Fatal(`kube-apiserver exited: ${apiserver.output.join('').slice(-2000)}`)
      const r = await httpsGet(`${apiUrl}/readyz`, ca.certPem, { cert: admin.certPem, key: admin.keyPem })
      return r.status === 200
    }, 120_000)
  } catch (error) {
    await stop()
    throw error
  }
  return { dir, ca, apiUrl, kubeconfigPath, kubeConfig, services, stop }
}

// Where each kind our manifests and chart hold is created: [API prefix, plural, namespaced].
export const API_PATHS: Record<string, [string, string, boolean]> = {
  Namespace: ['/api/v1', 'namespaces', false],
  ServiceAccount: ['/api/v1', 'serviceaccounts', true],
  Service: ['/api/v1', 'services', true],
  ConfigMap: ['/api/v1', 'configmaps', true],
  ClusterRole: ['/apis/rbac.authorization.k8s.io/v1', 'clusterroles', false],
  ClusterRoleBinding: ['/apis/rbac.authorization.k8s.io/v1', 'clusterrolebindings', false],
  Role: ['/apis/rbac.authorization.k8s.io/v1', 'roles', true],
  RoleBinding: ['/apis/rbac.authorization.k8s.io/v1', 'rolebindings', true],
  Deployment: ['/apis/apps/v1', 'deployments', true],
  DaemonSet: ['/apis/apps/v1', 'daemonsets', true],
  PodDisruptionBudget: ['/apis/policy/v1', 'poddisruptionbudgets', true],
  NetworkPolicy: ['/apis/networking.k8s.io/v1', 'networkpolicies', true],
  MutatingWebhookConfiguration: ['/apis/admissionregistration.k8s.io/v1', 'mutatingwebhookconfigurations', false],
}

export interface DryRunAnswer {
  status: number
  text: string
  warnings: string[]
}

// Creates the object with server-side dry run and strict field validation, as
// the admin: a misspelt field, a value the API refuses or a deprecated field
// shows in the answer's status or Warning headers, and nothing is stored.
export async function dryRunCreate(cp: Pick<ControlPlane, 'apiUrl' | 'kubeConfig'>, object: KubernetesObject): Promise<DryRunAnswer> {
  const where = API_PATHS[object.kind ?? '']
  if (!where) throw new Error(`dryRunCreate: no API path known for kind ${object.kind} (add it to API_PATHS)`)
  const [prefix, plural, namespaced] = where
  const path = `${prefix}${namespaced ? `/namespaces/${object.metadata?.namespace ?? 'default'}` : ''}/${plural}?dryRun=All&fieldValidation=Strict`
  const options: https.RequestOptions = { method: 'POST', headers: { 'content-type': 'application/json' } }
  await cp.kubeConfig.applyToHTTPSOptions(options)
  return new Promise((resolve, reject) => {
    const req = https.request(`${cp.apiUrl}${path}`, options, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, warnings: res.headers.warning === undefined ? [] : [res.headers.warning].flat() }))
    })
    req.on('error', reject)
    req.end(JSON.stringify(object))
  })
}

// A CRD from test/e2e/fixtures/<name>.crd.yaml (the Secrets Store CSI Driver's,
// unchanged), created and waited for until the API server says Established.
export async function installFixtureCrd(cp: Pick<ControlPlane, 'kubeConfig'>, name: string): Promise<void> {
  const crd = parseAllDocuments(readFileSync(join(ROOT, `test/e2e/fixtures/${name}.crd.yaml`), 'utf8'))[0]!.toJS() as { metadata: { name: string } }
  const ext = cp.kubeConfig.makeApiClient(ApiextensionsV1Api)
  await ext.createCustomResourceDefinition({ body: crd as never })
  await waitFor(`the ${crd.metadata.name} CRD to be established`, async () => ((await ext.readCustomResourceDefinition({ name: crd.metadata.name })).status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True'))
}

export interface Injector {
  url: string
  ca: CertificateAuthority
  certFile: string
  keyFile: string
  process: Process
  // A new serving certificate from the same CA, written over the old files;
  // returns the certificate's PEM.
  rotate(): string
  stop(): Promise<void>
}

export async function startInjector(dir: string, env: Record<string, string> = {}): Promise<Injector> {
  const ca = generateCA({ commonName: 'e2e webhook CA', validityMs: 24 * HOUR })
  const certFile = join(dir, `webhook-${Date.now()}.crt`)
  const keyFile = certFile.replace(/\.crt$/, '.key')
  const write = (): string => {
    const leaf = generateServingCert({ ca, hosts: ['127.0.0.1'], validityMs: HOUR })
    writeFileSync(keyFile, leaf.keyPem)
    writeFileSync(certFile, leaf.certPem)
    return leaf.certPem
  }
  write()
  const port = await freePort()
  const proc = start(join(ROOT, 'node_modules/.bin/node'), [join(ROOT, 'src/cli.ts'), 'serve'], {
    AGENT_INJECT_LISTEN: `127.0.0.1:${port}`,
    AGENT_INJECT_TLS_CERT_FILE: certFile,
    AGENT_INJECT_TLS_KEY_FILE: keyFile,
    ...env,
  })
  const url = `https://127.0.0.1:${port}`
  await waitFor('vault-injector /health/ready', async () => {
    if (proc.child.exitCode !== null) throw new Fatal(`vault-injector exited: ${proc.output.join('')}`)
    return (await httpsGet(`${url}/health/ready`, ca.certPem)).status === 204
  })
  return { url, ca, certFile, keyFile, process: proc, rotate: write, stop: () => proc.stop() }
}

// A Vault dev server (root token "root") on `host` (loopback unless a test
// needs pods to reach it; test/e2e/vault.ts adds Kubernetes auth). Vault also binds a
// cluster listener on the API port + 1, which freePort() never checked: with
// another e2e file running beside this one, that port could be taken (by a
// listener or an outgoing connection's local port) and Vault exited. Both
// ports are checked, and a Vault that exits while starting is started again on
// another pair.
export async function startVaultDev(dir: string, host = '127.0.0.1'): Promise<{ process: Process; addr: string }> {
  let lastOutput = ''
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePortPair(host)
    const addr = `http://${host}:${port}`
    const proc = start(join(BIN, 'vault'), ['server', '-dev', '-dev-root-token-id=root', `-dev-listen-address=${host}:${port}`], { HOME: dir, VAULT_DISABLE_MLOCK: 'true' })
    try {
      await waitFor('vault dev server', async () => {
        if (proc.child.exitCode !== null) throw new Fatal(`vault exited: ${proc.output.join('').slice(-2000)}`)
        return (await fetch(`${addr}/v1/sys/health`)).status === 200
      })
      return { process: proc, addr }
    } catch (error) {
      await proc.stop()
      lastOutput = (error as Error).message
      if (!(error instanceof Fatal)) throw error
    }
  }
  throw new Error(`Vault did not start in 3 attempts: ${lastOutput}`)
}

// `vault-injector register` as a user runs it, against the e2e cluster.
export function register(kubeconfigPath: string, args: string[]): Promise<{ code: number; output: string }> {
  const proc = start(join(ROOT, 'node_modules/.bin/node'), [join(ROOT, 'src/cli.ts'), 'register', ...args], { KUBECONFIG: kubeconfigPath })
  return new Promise((resolve) => proc.child.once('exit', (code) => resolve({ code: code ?? -1, output: proc.output.join('') })))
}

// A kubeconfig for the e2e API server with one user.
function writeKubeconfig(path: string, cluster: Pick<ControlPlane, 'apiUrl' | 'ca'>, userName: string, user: Record<string, string>): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'e2e', cluster: { server: cluster.apiUrl, 'certificate-authority-data': Buffer.from(cluster.ca.certPem).toString('base64') } }],
    users: [{ name: userName, user }],
    contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: userName } }],
    'current-context': 'e2e',
  }
  writeFileSync(path, stringify(config))
}

// A ServiceAccount token from the TokenRequest API (what the kubelet projects).
export async function serviceAccountToken(cp: ControlPlane, namespace: string, name: string, audiences: string[] = [], expirationSeconds = 3600): Promise<string> {
  const request = await cp.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences, expirationSeconds } } })
  const token = request.status?.token
  if (!token) throw new Error(`no token issued for ${namespace}/${name}`)
  return token
}

// Paths of a pod's filesystem (/vault/..., /home/vault/..., /var/run/...),
// moved under root: every JSON string value that is such a path, at any depth.
export function movePodPaths<T>(value: T, root: string): T {
  const text = JSON.stringify(value).replace(/"(\/(?:vault|home|var\/run|etc|tmp)\/[^"]*)"/g, (_match, path: string) => JSON.stringify(join(root, path)))
  return JSON.parse(text) as T
}

// Writes a file of the pod's filesystem under root, creating its folders.
export function writePodFile(root: string, podPath: string, text: string): string {
  const path = join(root, podPath)
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, text)
  return path
}

// The exit code, or 'running' if the process has not exited within timeoutMs.
export function exitWithin(proc: Process, timeoutMs: number): Promise<number | null | 'running'> {
  if (proc.child.exitCode !== null) return Promise.resolve(proc.child.exitCode)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('running'), timeoutMs)
    proc.child.once('exit', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
  })
}

// The injector's own identity, as manifests/base gives it in the cluster: the
// vault-injector namespace and ServiceAccount, bound by rbac.yaml unchanged.
// Returns a kubeconfig that authenticates as that ServiceAccount (a token from
// the TokenRequest API), so what the injector does is checked by RBAC.
export async function installInjectorIdentity(cp: ControlPlane): Promise<string> {
  const namespace = 'vault-injector'
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  await core.createNamespace({ body: { metadata: { name: namespace } } })
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'vault-injector' } } })
  const objects = KubernetesObjectApi.makeApiClient(cp.kubeConfig)
  for (const doc of parseAllDocuments(readFileSync(join(ROOT, 'manifests/base/rbac.yaml'), 'utf8'))) {
    await objects.create(doc.toJS() as KubernetesObject)
  }
  const path = join(cp.dir, 'kubeconfig-vault-injector')
  writeKubeconfig(path, cp, 'vault-injector', { token: await serviceAccountToken(cp, namespace, 'vault-injector') })
  return path
}

// Until the API server calls the webhook just registered (it picks up a new
// configuration within a second or two, longer on a busy machine): a
// server-side dry run of an annotated pod in `namespace` comes back injected
// (or refused by the webhook, which also shows it is called).
export async function waitForWebhook(cp: ControlPlane, namespace: string, serviceAccountName = 'default', role = 'probe'): Promise<void> {
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  const probe = {
    metadata: { name: 'webhook-probe', annotations: { 'vault.hashicorp.com/agent-inject': 'true', 'vault.hashicorp.com/role': role, 'vault.hashicorp.com/agent-pre-populate-only': 'true' } },
    spec: { serviceAccountName, containers: [{ name: 'probe', image: 'probe' }] },
  }
  await waitFor('the API server to call the webhook', async () => {
    const pod = await core.createNamespacedPod({ namespace, body: probe, dryRun: 'All' }).catch((error: Error & { body?: unknown }) => String(error.body ?? error.message))
    if (typeof pod === 'string') return /admission webhook \S+ denied the request/.test(pod)
    return pod.spec?.initContainers?.some((c) => c.name === 'vault-agent-init') ?? false
  }, 60_000)
}
