// A real Vault Agent runs the configuration vault-injector generates: a Vault
// dev server with Kubernetes auth against the e2e kube-apiserver, a pod
// injected through the API server, its VAULT_CONFIG decoded and run with the
// paths moved into a temporary folder and a token from the TokenRequest API.
import t, { type Test } from 'tap'
import { CoreV1Api } from '@kubernetes/client-node'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BIN, exitWithin, freePort, movePodPaths, register, serviceAccountToken, start, startControlPlane, startInjector, waitFor, waitForWebhook, writePodFile, type ControlPlane, type Injector, type Process } from './harness.ts'
import { startVault, type DevVault } from './vault.ts'

type Obj = Record<string, any>
const NS = 'agent'

if (!existsSync(join(BIN, 'vault'))) {
  t.plan(0, `no vault binary in ${BIN}: test/e2e/build.sh could not build Vault from the Go module proxy`)
  process.exit(0)
}

let cp: ControlPlane
let injector: Injector
let vault: DevVault
let vaultAddr = ''
const vaultApi = (method: string, path: string, body?: unknown): Promise<Obj> => vault.api(method, path, body)

t.before(async () => {
  cp = await startControlPlane()
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  await core.createNamespace({ body: { metadata: { name: NS } } })
  for (const name of ['default', 'app']) await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name } } })
  vault = await startVault(cp, NS)
  vaultAddr = vault.address
  await vaultApi('PUT', 'sys/policies/acl/app', { policy: 'path "secret/data/app" { capabilities = ["read"] }' })
  await vaultApi('POST', 'auth/kubernetes/role/app', { bound_service_account_names: ['app'], bound_service_account_namespaces: [NS], policies: ['app'], ttl: '1h' })
  // The same, for tokens with the audience "vault" only (vault-injector.dev/token-audience).
  await vaultApi('POST', 'auth/kubernetes/role/app-aud', { bound_service_account_names: ['app'], bound_service_account_namespaces: [NS], audience: 'vault', policies: ['app'], ttl: '1h' })
  await vaultApi('POST', 'secret/data/app', { data: { password: 'first-s3cret' } })

  injector = await startInjector(cp.dir)
  const caFile = join(cp.dir, 'webhook-ca.crt')
  writeFileSync(caFile, injector.ca.certPem)
  const r = await register(cp.kubeconfigPath, ['--url', `${injector.url}/mutate`, '--ca-file', caFile, '--failure-policy', 'Fail'])
  if (r.code !== 0) throw new Error(r.output)
  await waitForWebhook(cp, NS)
})
t.teardown(async () => {
  await injector?.stop()
  await vault?.stop()
  await cp?.stop()
})

const RENDERED = '/vault/secrets/creds'

// A pod with one secret, "creds", rendered by a template from secret/data/app,
// created through the API server (so through the webhook); more annotations
// and spec fields as given.
async function createAgentPod(name: string, annotations: Record<string, string> = {}, spec: Obj = {}): Promise<Obj> {
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  const body = {
    metadata: {
      name,
      annotations: {
        'vault.hashicorp.com/agent-inject': 'true',
        'vault.hashicorp.com/role': 'app',
        'vault.hashicorp.com/service': vaultAddr,
        'vault.hashicorp.com/agent-inject-secret-creds': 'secret/data/app',
        'vault.hashicorp.com/agent-inject-template-creds': '{{ with secret "secret/data/app" }}password={{ .Data.data.password }}{{ end }}',
        ...annotations,
      },
    },
    spec: { serviceAccountName: 'app', containers: [{ name: 'app', image: 'registry.example.com/app:1' }], ...spec },
  }
  return (await core.createNamespacedPod({ namespace: NS, body })) as Obj
}

function containerOf(pod: Obj, name: string): Obj {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c: Obj) => c.name === name)
}

function configOf(pod: Obj, container: string): Obj {
  return JSON.parse(Buffer.from(containerOf(pod, container).env.find((e: Obj) => e.name === 'VAULT_CONFIG').value, 'base64').toString('utf8')) as Obj
}

// The token the kubelet would put where the agent reads it: from the
// TokenRequest API, for the pod's ServiceAccount.
async function giveAgentToken(pod: Obj, root: string, audiences: string[] = []): Promise<void> {
  const agent = containerOf(pod, 'vault-agent-init') ? 'vault-agent-init' : 'vault-agent'
  const podPath = configOf(pod, agent).auto_auth.method.config.token_path as string
  writePodFile(root, podPath, await serviceAccountToken(cp, NS, 'app', audiences))
}

// Runs an agent container of the pod: its configuration and its literal
// environment (log settings among them), with the pod's paths moved under root
// and its volume mounts there as folders.
function runAgent(pod: Obj, container: string, root: string): Process {
  for (const mount of containerOf(pod, container).volumeMounts ?? []) mkdirSync(join(root, mount.mountPath), { recursive: true })
  const file = join(root, `${container}.json`)
  writeFileSync(file, JSON.stringify(movePodPaths(configOf(pod, container), root)))
  const env = Object.fromEntries(containerOf(pod, container).env.filter((e: Obj) => typeof e.value === 'string' && e.name !== 'VAULT_CONFIG').map((e: Obj) => [e.name, e.value]))
  return start(join(BIN, 'vault'), ['agent', `-config=${file}`], movePodPaths(env, root))
}

// Waits for an agent that should exit (the init agent): its exit code, with its output when it is not 0.
async function exitOf(agent: Process, t: Test, what: string): Promise<void> {
  const code = await exitWithin(agent, 60_000)
  t.equal(code, 0, code === 0 ? what : `${what}: failed (${code}): ${agent.output.join('').slice(-1500)}`)
}

t.test('the init and sidecar agents render the secret, and the sidecar re-renders it when it changes', async (t) => {
  const pod = await createAgentPod('app', { 'vault.hashicorp.com/template-static-secret-render-interval': '1s' })
  t.same(pod.spec.containers.map((c: Obj) => c.name), ['app', 'vault-agent'], 'injected through the API server')
  const root = join(cp.dir, 'classic')
  await giveAgentToken(pod, root)

  await exitOf(runAgent(pod, 'vault-agent-init', root), t, 'the init agent exits after rendering')
  t.equal(readFileSync(join(root, RENDERED), 'utf8'), 'password=first-s3cret', 'the init agent rendered the secret before the app would start')

  const sidecar = runAgent(pod, 'vault-agent', root)
  t.teardown(() => sidecar.stop())
  await waitFor('the sidecar to authenticate', async () => existsSync(join(root, '/home/vault/.vault-token')), 30_000)
  await vaultApi('POST', 'secret/data/app', { data: { password: 'rotated-s3cret' } })
  await waitFor('the sidecar to re-render the changed secret', async () => readFileSync(join(root, RENDERED), 'utf8') === 'password=rotated-s3cret', 30_000).catch((error) => {
    throw new Error(`${(error as Error).message}\n${sidecar.output.join('').slice(-2000)}`)
  })
  t.pass('the sidecar re-rendered the rotated secret')
})

// vault-injector's projected token: the pod mounts no token at all; the agents
// get their own, with the audience and lifetime the annotations give, and a
// Vault role bound to that audience accepts it while a token for the API
// server's default audience is refused.
t.test('a projected token with its own audience: Vault accepts it, and only it', async (t) => {
  await vaultApi('POST', 'secret/data/app', { data: { password: 'audience-s3cret' } })
  const pod = await createAgentPod(
    'app-projected',
    { 'vault.hashicorp.com/agent-pre-populate-only': 'true', 'vault.hashicorp.com/role': 'app-aud', 'vault-injector.dev/token-audience': 'vault', 'vault-injector.dev/token-expiration-seconds': '600' },
    { automountServiceAccountToken: false },
  )
  const projected = pod.spec.volumes.find((v: Obj) => v.name === 'vault-agent-token')
  t.same(projected?.projected?.sources, [{ serviceAccountToken: { audience: 'vault', expirationSeconds: 600, path: 'token' } }], 'the API server stored the agents\' projected token volume')
  t.notOk((containerOf(pod, 'app').volumeMounts ?? []).some((m: Obj) => m.name === 'vault-agent-token'), 'the app does not mount it')
  t.equal(configOf(pod, 'vault-agent-init').auto_auth.method.config.token_path, '/var/run/secrets/vault.hashicorp.com/serviceaccount/token', 'the agent logs in with the projected token')
  const root = join(cp.dir, 'projected')

  // The API server's default audience: the role bound to "vault" refuses it,
  // and the agent keeps retrying (never renders).
  await giveAgentToken(pod, root)
  const wrong = runAgent(pod, 'vault-agent-init', root)
  t.equal(await exitWithin(wrong, 10_000), 'running', 'with a token for another audience the agent keeps retrying')
  await wrong.stop()
  t.notOk(existsSync(join(root, RENDERED)), 'and renders nothing')
  t.match(wrong.output.join(''), /Code: 403/, 'Vault refused the login (403)')

  await giveAgentToken(pod, root, ['vault'])
  await exitOf(runAgent(pod, 'vault-agent-init', root), t, 'the init agent exits after rendering')
  t.equal(readFileSync(join(root, RENDERED), 'utf8'), 'password=audience-s3cret', 'rendered with the audience-bound token')
})

// Native sidecar mode: one agent, stored by the API server as an init
// container with restartPolicy: Always. Its startup probe (what holds the app
// back) fails until the agent has rendered every file, then passes, and the
// agent stays up to re-render.
t.test('native sidecar: the startup probe passes only once the real agent has rendered', async (t) => {
  await vaultApi('POST', 'secret/data/app', { data: { password: 'native-s3cret' } })
  const pod = await createAgentPod('app-native', { 'vault.hashicorp.com/template-static-secret-render-interval': '1s', 'vault-injector.dev/native-sidecar': 'true' })
  const agentContainer = containerOf(pod, 'vault-agent')
  t.equal(agentContainer?.restartPolicy, 'Always', 'stored as a native sidecar')
  t.same(pod.spec.containers.map((c: Obj) => c.name), ['app'], 'and no classic sidecar')

  const root = join(cp.dir, 'native')
  await giveAgentToken(pod, root)
  const [shell, flag, script] = agentContainer.startupProbe.exec.command as string[]
  const probe = async (): Promise<number | null | 'running'> => exitWithin(start(shell!, [flag!, script!.replaceAll('/vault/secrets', join(root, '/vault/secrets'))]), 5_000)
  t.not(await probe(), 0, 'before the agent runs, the startup probe fails')

  const agent = runAgent(pod, 'vault-agent', root)
  t.teardown(() => agent.stop())
  await waitFor('the startup probe to pass', async () => (await probe()) === 0, 30_000).catch((error) => {
    throw new Error(`${(error as Error).message}\n${agent.output.join('').slice(-2000)}`)
  })
  t.equal(readFileSync(join(root, RENDERED), 'utf8'), 'password=native-s3cret', 'the probe passed because the file is rendered')
  t.equal(agent.child.exitCode, null, 'and the agent keeps running (no exit_after_auth)')
})

// Many of the options at once, as the real agent parses and runs them: the
// cache (persisted from the init agent to the sidecar) with its listener and
// quit endpoint, telemetry, the token written beside the secrets, a file name
// in a sub-folder with its mode, a command after rendering, JSON logs. The
// agents use their own projected token, so the persistent cache must be told
// where it is (it reads the default token path otherwise, which such a pod
// does not have; this test found that).
t.test('cache, listener, quit, telemetry, token file, file name, mode and command: the real agent runs them', async (t) => {
  await vaultApi('POST', 'secret/data/app', { data: { password: 'options-s3cret' } })
  const port = await freePort()
  const root = join(cp.dir, 'options')
  const pod = await createAgentPod(
    'app-options',
    {
      'vault.hashicorp.com/role': 'app-aud',
      'vault-injector.dev/token-audience': 'vault',
      'vault.hashicorp.com/agent-inject-file-creds': 'db/creds.txt',
      'vault.hashicorp.com/agent-inject-perms-creds': '0400',
      'vault.hashicorp.com/error-on-missing-key-creds': 'true',
      'vault.hashicorp.com/agent-inject-command-creds': `touch ${join(root, 'command-ran')}`,
      'vault.hashicorp.com/agent-inject-token': 'true',
      'vault.hashicorp.com/agent-cache-enable': 'true',
      'vault.hashicorp.com/agent-cache-listener-port': String(port),
      'vault.hashicorp.com/agent-cache-use-auto-auth-token': 'force',
      'vault.hashicorp.com/agent-enable-quit': 'true',
      'vault.hashicorp.com/agent-telemetry-prometheus_retention_time': '30s',
      'vault.hashicorp.com/agent-telemetry-disable_hostname': 'true',
      'vault.hashicorp.com/log-format': 'json',
    },
    { automountServiceAccountToken: false },
  )
  await giveAgentToken(pod, root, ['vault'])

  const init = runAgent(pod, 'vault-agent-init', root)
  await exitOf(init, t, 'the init agent accepts the configuration and exits after rendering')
  const rendered = join(root, '/vault/secrets/db/creds.txt')
  t.equal(readFileSync(rendered, 'utf8'), 'password=options-s3cret', 'rendered under its file name, in a sub-folder')
  t.equal(statSync(rendered).mode & 0o777, 0o400, 'with the mode asked for')
  t.ok(existsSync(join(root, 'command-ran')), 'the command ran after rendering')
  t.match(readFileSync(join(root, '/vault/secrets/token'), 'utf8'), /^hvs\.|^s\./, 'the Vault token is written beside the secrets')
  t.match(init.output.join(''), /^\{"@level"/m, 'logs are JSON')

  const sidecar = runAgent(pod, 'vault-agent', root)
  t.teardown(() => sidecar.stop())
  const listener = `http://127.0.0.1:${port}`
  await waitFor('the cache listener', async () => {
    if (sidecar.child.exitCode !== null) throw new Error(`the sidecar exited: ${sidecar.output.join('').slice(-2000)}`)
    return (await fetch(`${listener}/v1/secret/data/app`)).status === 200
  }, 30_000)
  const read = (await (await fetch(`${listener}/v1/secret/data/app`)).json()) as Obj
  t.equal(read.data?.data?.password, 'options-s3cret', 'the listener answers with the auto-auth token (use_auto_auth_token: force)')
  t.equal((await fetch(`${listener}/agent/v1/quit`, { method: 'POST' })).status, 200, 'the quit endpoint is on')
  t.equal(await exitWithin(sidecar, 30_000), 0, 'and the sidecar quits when asked')
})
