// A real Vault Agent runs the configuration vault-injector generates: a Vault
// dev server with Kubernetes auth against the e2e kube-apiserver, a pod
// injected through the API server, its VAULT_CONFIG decoded and run with the
// paths moved into a temporary folder and a token from the TokenRequest API.
import t from 'tap'
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BIN, freePort, register, start, startControlPlane, startInjector, waitFor, type ControlPlane, type Injector, type Process } from './harness.ts'

type Obj = Record<string, any>
const NS = 'agent'

if (!existsSync(join(BIN, 'vault'))) {
  t.plan(0, `no vault binary in ${BIN}: test/e2e/build.sh could not build Vault from the Go module proxy`)
  process.exit(0)
}

let cp: ControlPlane
let injector: Injector
let vault: Process
let vaultAddr = ''

async function vaultApi(method: string, path: string, body?: unknown): Promise<Obj> {
  const res = await fetch(`${vaultAddr}/v1/${path}`, { method, headers: { 'X-Vault-Token': 'root', 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) })
  const text = await res.text()
  if (!res.ok) throw new Error(`Vault ${method} ${path}: ${res.status} ${text}`)
  return text ? (JSON.parse(text) as Obj) : {}
}

async function tokenFor(core: CoreV1Api, serviceAccount: string, audiences: string[] = [], expirationSeconds = 3600): Promise<string> {
  const request = await core.createNamespacedServiceAccountToken({ name: serviceAccount, namespace: NS, body: { spec: { audiences, expirationSeconds } } })
  const token = request.status?.token
  if (!token) throw new Error(`no token issued for ${serviceAccount}`)
  return token
}

t.before(async () => {
  cp = await startControlPlane()
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  await core.createNamespace({ body: { metadata: { name: NS } } })
  for (const name of ['default', 'app', 'vault-reviewer']) await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name } } })
  // Vault reviews the agents' tokens with this account's token.
  await cp.kubeConfig.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: { metadata: { name: 'vault-reviewer' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' }, subjects: [{ kind: 'ServiceAccount', name: 'vault-reviewer', namespace: NS }] },
  })

  const port = await freePort()
  vaultAddr = `http://127.0.0.1:${port}`
  vault = start(join(BIN, 'vault'), ['server', '-dev', '-dev-root-token-id=root', `-dev-listen-address=127.0.0.1:${port}`], { HOME: cp.dir, VAULT_DISABLE_MLOCK: 'true' })
  await waitFor('vault dev server', async () => (await fetch(`${vaultAddr}/v1/sys/health`)).status === 200)
  await vaultApi('POST', 'sys/auth/kubernetes', { type: 'kubernetes' })
  await vaultApi('POST', 'auth/kubernetes/config', { kubernetes_host: cp.apiUrl, kubernetes_ca_cert: cp.ca.certPem, token_reviewer_jwt: await tokenFor(core, 'vault-reviewer'), disable_local_ca_jwt: true })
  await vaultApi('PUT', 'sys/policies/acl/app', { policy: 'path "secret/data/app" { capabilities = ["read"] }' })
  await vaultApi('POST', 'auth/kubernetes/role/app', { bound_service_account_names: ['app'], bound_service_account_namespaces: [NS], policies: ['app'], ttl: '1h' })
  await vaultApi('POST', 'secret/data/app', { data: { password: 'first-s3cret' } })

  injector = await startInjector(cp.dir)
  const caFile = join(cp.dir, 'webhook-ca.crt')
  writeFileSync(caFile, injector.ca.certPem)
  const r = await register(cp.kubeconfigPath, ['--url', `${injector.url}/mutate`, '--ca-file', caFile, '--failure-policy', 'Fail'])
  if (r.code !== 0) throw new Error(r.output)
  await new Promise((resolve) => setTimeout(resolve, 2000))
})
t.teardown(async () => {
  await injector?.stop()
  await vault?.stop()
  await cp?.stop()
})

// The agent's paths, moved under a folder a test can use.
function remap(config: Obj, root: string): Obj {
  const text = JSON.stringify(config)
    .replaceAll('/var/run/secrets/kubernetes.io/serviceaccount', join(root, 'sa'))
    .replaceAll('/var/run/secrets/vault.hashicorp.com/serviceaccount', join(root, 'agent-sa'))
    .replaceAll('/home/vault', join(root, 'home'))
    .replaceAll('/vault/secrets', join(root, 'secrets'))
  return JSON.parse(text) as Obj
}

function configOf(pod: Obj, container: string): Obj {
  const c = [...pod.spec.initContainers, ...pod.spec.containers].find((x: Obj) => x.name === container)
  return JSON.parse(Buffer.from(c.env.find((e: Obj) => e.name === 'VAULT_CONFIG').value, 'base64').toString('utf8')) as Obj
}

t.test('the init and sidecar agents render the secret, and the sidecar re-renders it when it changes', async (t) => {
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  const pod = (await core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: {
        name: 'app',
        annotations: {
          'vault.hashicorp.com/agent-inject': 'true',
          'vault.hashicorp.com/role': 'app',
          'vault.hashicorp.com/service': vaultAddr,
          'vault.hashicorp.com/agent-inject-secret-creds': 'secret/data/app',
          'vault.hashicorp.com/agent-inject-template-creds': '{{ with secret "secret/data/app" }}password={{ .Data.data.password }}{{ end }}',
          'vault.hashicorp.com/template-static-secret-render-interval': '1s',
        },
      },
      spec: { serviceAccountName: 'app', containers: [{ name: 'app', image: 'registry.example.com/app:1' }] },
    },
  })) as Obj
  t.same(pod.spec.containers.map((c: Obj) => c.name), ['app', 'vault-agent'], 'injected through the API server')

  const root = cp.dir
  for (const dir of ['sa', 'home', 'secrets']) mkdirSync(join(root, dir), { recursive: true })
  writeFileSync(join(root, 'sa/token'), await tokenFor(core, 'app'))
  const rendered = join(root, 'secrets/creds')

  writeFileSync(join(root, 'init.json'), JSON.stringify(remap(configOf(pod, 'vault-agent-init'), root)))
  const init = start(join(BIN, 'vault'), ['agent', `-config=${join(root, 'init.json')}`])
  const initCode = await new Promise<number | null>((resolve) => init.child.once('exit', resolve))
  t.equal(initCode, 0, initCode === 0 ? 'the init agent exits after rendering' : `the init agent failed: ${init.output.join('').slice(-1500)}`)
  t.equal(readFileSync(rendered, 'utf8'), 'password=first-s3cret', 'the init agent rendered the secret before the app would start')

  writeFileSync(join(root, 'sidecar.json'), JSON.stringify(remap(configOf(pod, 'vault-agent'), root)))
  const sidecar = start(join(BIN, 'vault'), ['agent', `-config=${join(root, 'sidecar.json')}`])
  t.teardown(() => sidecar.stop())
  await waitFor('the sidecar to authenticate', async () => existsSync(join(root, 'home/.vault-token')), 30_000)
  await vaultApi('POST', 'secret/data/app', { data: { password: 'rotated-s3cret' } })
  await waitFor('the sidecar to re-render the changed secret', async () => readFileSync(rendered, 'utf8') === 'password=rotated-s3cret', 30_000).catch((error) => {
    throw new Error(`${(error as Error).message}\n${sidecar.output.join('').slice(-2000)}`)
  })
  t.pass('the sidecar re-rendered the rotated secret')
})

// vault-injector's projected token: the pod mounts no token at all; the agents
// get their own, with the audience and lifetime the annotations give, and a
// Vault role bound to that audience accepts it while a token for the API
// server's default audience is refused. What the kubelet would project is
// asked for here with the same audience and lifetime from the TokenRequest API.
t.test('a projected token with its own audience: Vault accepts it, and only it', async (t) => {
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  await vaultApi('POST', 'auth/kubernetes/role/app-aud', { bound_service_account_names: ['app'], bound_service_account_namespaces: [NS], audience: 'vault', policies: ['app'], ttl: '1h' })
  await vaultApi('POST', 'secret/data/app', { data: { password: 'audience-s3cret' } })
  const pod = (await core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: {
        name: 'app-projected',
        annotations: {
          'vault.hashicorp.com/agent-inject': 'true',
          'vault.hashicorp.com/agent-pre-populate-only': 'true',
          'vault.hashicorp.com/role': 'app-aud',
          'vault.hashicorp.com/service': vaultAddr,
          'vault.hashicorp.com/agent-inject-secret-creds': 'secret/data/app',
          'vault.hashicorp.com/agent-inject-template-creds': '{{ with secret "secret/data/app" }}password={{ .Data.data.password }}{{ end }}',
          'vault-injector.dev/token-audience': 'vault',
          'vault-injector.dev/token-expiration-seconds': '600',
        },
      },
      spec: { serviceAccountName: 'app', automountServiceAccountToken: false, containers: [{ name: 'app', image: 'registry.example.com/app:1' }] },
    },
  })) as Obj
  const projected = pod.spec.volumes.find((v: Obj) => v.name === 'vault-agent-token')
  t.same(projected?.projected?.sources, [{ serviceAccountToken: { audience: 'vault', expirationSeconds: 600, path: 'token' } }], 'the API server stored the agents\' projected token volume')
  const app = pod.spec.containers.find((c: Obj) => c.name === 'app')
  t.notOk((app.volumeMounts ?? []).some((m: Obj) => m.name === 'vault-agent-token'), 'the app does not mount it')

  const root = join(cp.dir, 'projected')
  for (const dir of ['agent-sa', 'home', 'secrets']) mkdirSync(join(root, dir), { recursive: true })
  const config = remap(configOf(pod, 'vault-agent-init'), root)
  t.equal(config.auto_auth.method.config.token_path, join(root, 'agent-sa/token'), 'the agent logs in with the projected token')
  const run = async (token: string): Promise<{ code: number | null; output: string }> => {
    writeFileSync(join(root, 'agent-sa/token'), token)
    writeFileSync(join(root, 'init.json'), JSON.stringify(config))
    const agent = start(join(BIN, 'vault'), ['agent', `-config=${join(root, 'init.json')}`])
    const code = await Promise.race([
      new Promise<number | null>((resolve) => agent.child.once('exit', resolve)),
      new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 10_000)),
    ])
    if (code === 'running') {
      await agent.stop()
      return { code: null, output: agent.output.join('') }
    }
    return { code, output: agent.output.join('') }
  }

  // The API server's default audience: the role bound to "vault" refuses it,
  // and the agent keeps retrying (never renders).
  const wrong = await run(await tokenFor(core, 'app', [], 600))
  t.notOk(existsSync(join(root, 'secrets/creds')), 'a token for another audience renders nothing')
  t.match(wrong.output, /Code: 403/, 'Vault refused the login (403)')

  const right = await run(await tokenFor(core, 'app', ['vault'], 600))
  t.equal(right.code, 0, right.code === 0 ? 'the init agent exits after rendering' : `the init agent failed: ${right.output.slice(-1500)}`)
  t.equal(readFileSync(join(root, 'secrets/creds'), 'utf8'), 'password=audience-s3cret', 'rendered with the audience-bound token')
})

// Native sidecar mode: one agent, stored by the API server as an init
// container with restartPolicy: Always. Its startup probe (what holds the app
// back) fails until the agent has rendered every file, then passes, and the
// agent stays up to re-render.
t.test('native sidecar: the startup probe passes only once the real agent has rendered', async (t) => {
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  await vaultApi('POST', 'secret/data/app', { data: { password: 'native-s3cret' } })
  const pod = (await core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: {
        name: 'app-native',
        annotations: {
          'vault.hashicorp.com/agent-inject': 'true',
          'vault.hashicorp.com/role': 'app',
          'vault.hashicorp.com/service': vaultAddr,
          'vault.hashicorp.com/agent-inject-secret-creds': 'secret/data/app',
          'vault.hashicorp.com/agent-inject-template-creds': '{{ with secret "secret/data/app" }}password={{ .Data.data.password }}{{ end }}',
          'vault.hashicorp.com/template-static-secret-render-interval': '1s',
          'vault-injector.dev/native-sidecar': 'true',
        },
      },
      spec: { serviceAccountName: 'app', containers: [{ name: 'app', image: 'registry.example.com/app:1' }] },
    },
  })) as Obj
  const agentContainer = pod.spec.initContainers.find((c: Obj) => c.name === 'vault-agent')
  t.equal(agentContainer?.restartPolicy, 'Always', 'stored as a native sidecar')
  t.same(pod.spec.containers.map((c: Obj) => c.name), ['app'], 'and no classic sidecar')

  const root = join(cp.dir, 'native')
  for (const dir of ['sa', 'home', 'secrets']) mkdirSync(join(root, dir), { recursive: true })
  writeFileSync(join(root, 'sa/token'), await tokenFor(core, 'app'))
  const remapPaths = (text: string): string => text.replaceAll('/vault/secrets', join(root, 'secrets'))
  const [shell, flag, script] = agentContainer.startupProbe.exec.command as string[]
  const probe = (): Promise<number | null> =>
    new Promise((resolve) => start(shell!, [flag!, remapPaths(script!)]).child.once('exit', resolve))
  t.not(await probe(), 0, 'before the agent runs, the startup probe fails')

  writeFileSync(join(root, 'agent.json'), JSON.stringify(remap(configOf(pod, 'vault-agent'), root)))
  const agent = start(join(BIN, 'vault'), ['agent', `-config=${join(root, 'agent.json')}`])
  t.teardown(() => agent.stop())
  await waitFor('the startup probe to pass', async () => (await probe()) === 0, 30_000).catch((error) => {
    throw new Error(`${(error as Error).message}\n${agent.output.join('').slice(-2000)}`)
  })
  t.equal(readFileSync(join(root, 'secrets/creds'), 'utf8'), 'password=native-s3cret', 'the probe passed because the file is rendered')
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
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  await vaultApi('POST', 'auth/kubernetes/role/app-aud', { bound_service_account_names: ['app'], bound_service_account_namespaces: [NS], audience: 'vault', policies: ['app'], ttl: '1h' })
  await vaultApi('POST', 'secret/data/app', { data: { password: 'options-s3cret' } })
  const port = await freePort()
  const root = join(cp.dir, 'options')
  const pod = (await core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: {
        name: 'app-options',
        annotations: {
          'vault.hashicorp.com/agent-inject': 'true',
          'vault.hashicorp.com/role': 'app-aud',
          'vault-injector.dev/token-audience': 'vault',
          'vault.hashicorp.com/service': vaultAddr,
          'vault.hashicorp.com/agent-inject-secret-creds': 'secret/data/app',
          'vault.hashicorp.com/agent-inject-template-creds': '{{ with secret "secret/data/app" }}password={{ .Data.data.password }}{{ end }}',
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
      },
      spec: { serviceAccountName: 'app', automountServiceAccountToken: false, containers: [{ name: 'app', image: 'registry.example.com/app:1' }] },
    },
  })) as Obj

  for (const dir of ['agent-sa', 'home', 'secrets', 'agent-cache']) mkdirSync(join(root, dir), { recursive: true })
  writeFileSync(join(root, 'agent-sa/token'), await tokenFor(core, 'app', ['vault']))
  const configFor = (container: string): Obj => JSON.parse(JSON.stringify(remap(configOf(pod, container), root)).replaceAll('/vault/agent-cache', join(root, 'agent-cache'))) as Obj

  // The log settings reach the agent as the container's environment.
  const logEnv = (container: string): Record<string, string> => {
    const c = [...pod.spec.initContainers, ...pod.spec.containers].find((x: Obj) => x.name === container)
    return Object.fromEntries(c.env.filter((e: Obj) => e.name.startsWith('VAULT_LOG_')).map((e: Obj) => [e.name, e.value]))
  }
  writeFileSync(join(root, 'init.json'), JSON.stringify(configFor('vault-agent-init')))
  const init = start(join(BIN, 'vault'), ['agent', `-config=${join(root, 'init.json')}`], logEnv('vault-agent-init'))
  const initCode = await new Promise<number | null>((resolve) => init.child.once('exit', resolve))
  t.equal(initCode, 0, initCode === 0 ? 'the init agent accepts the configuration and exits after rendering' : `the init agent failed: ${init.output.join('').slice(-2000)}`)
  const rendered = join(root, 'secrets/db/creds.txt')
  t.equal(readFileSync(rendered, 'utf8'), 'password=options-s3cret', 'rendered under its file name, in a sub-folder')
  t.equal(statSync(rendered).mode & 0o777, 0o400, 'with the mode asked for')
  t.ok(existsSync(join(root, 'command-ran')), 'the command ran after rendering')
  t.match(readFileSync(join(root, 'secrets/token'), 'utf8'), /^hvs\.|^s\./, 'the Vault token is written beside the secrets')
  t.match(init.output.join(''), /^\{"@level"/m, 'logs are JSON')

  writeFileSync(join(root, 'sidecar.json'), JSON.stringify(configFor('vault-agent')))
  const sidecar = start(join(BIN, 'vault'), ['agent', `-config=${join(root, 'sidecar.json')}`], logEnv('vault-agent'))
  t.teardown(() => sidecar.stop())
  const listener = `http://127.0.0.1:${port}`
  await waitFor('the cache listener', async () => {
    if (sidecar.child.exitCode !== null) throw new Error(`the sidecar exited: ${sidecar.output.join('').slice(-2000)}`)
    return (await fetch(`${listener}/v1/secret/data/app`)).status === 200
  }, 30_000)
  const read = (await (await fetch(`${listener}/v1/secret/data/app`)).json()) as Obj
  t.equal(read.data?.data?.password, 'options-s3cret', 'the listener answers with the auto-auth token (use_auto_auth_token: force)')
  t.equal((await fetch(`${listener}/agent/v1/quit`, { method: 'POST' })).status, 200, 'the quit endpoint is on')
  const quitCode = await new Promise<number | null>((resolve) => (sidecar.child.exitCode !== null ? resolve(sidecar.child.exitCode) : sidecar.child.once('exit', resolve)))
  t.equal(quitCode, 0, 'and the sidecar quits when asked')
})
