// Every agent configuration in the golden files (each annotation group, as
// test/golden/*.injected.yaml records them) is given to the real Vault Agent:
// it must load it and start its auth handler. The Vault addresses there are
// not reachable, so the agents do not get further; what is checked is that
// the agent accepts what we generate (types, required fields, file references).
import t from 'tap'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { generateCA, generateServingCert } from '../../src/tls/ca.ts'
import { BIN, movePodPaths, ROOT, start, writePodFile } from './harness.ts'

type Obj = Record<string, any>
const GOLDEN = join(ROOT, 'test/golden')
const STARTED = /starting auth handler/
// What the agent prints when it cannot use its configuration.
const CONFIG_ERROR = /Error loading configuration|error parsing|Error parsing|failed to parse|cannot unmarshal|error decoding|Error creating (?:persistent cache|sink|file sink)|Error initializing|invalid configuration/i

if (!existsSync(join(BIN, 'vault'))) {
  t.plan(0, `no vault binary in ${BIN}: test/e2e/build.sh could not build Vault from the Go module proxy`)
  process.exit(0)
}

interface AgentCase {
  name: string
  config: Obj
  // The agent container's literal environment (log settings, client retries
  // and timeout, proxy, the AWS variables copied for IRSA...).
  env: Record<string, string>
}

function podSpecOf(doc: Obj): Obj | undefined {
  if (doc.kind === 'Pod') return doc.spec
  if (doc.kind === 'CronJob') return doc.spec?.jobTemplate?.spec?.template?.spec
  return doc.spec?.template?.spec
}

// "Pod billing-0 / vault-agent" → its decoded VAULT_CONFIG (the last document
// of every golden output) and the container's environment (the manifests).
function goldenCases(): AgentCase[] {
  const out: AgentCase[] = []
  for (const file of readdirSync(GOLDEN).filter((f) => f.endsWith('.injected.yaml')).sort()) {
    const parsed = parseAllDocuments(readFileSync(join(GOLDEN, file), 'utf8')).map((d) => d.toJS() as Obj | null)
    const decoded = parsed.at(-1) ?? {}
    const docs = parsed.flatMap((d) => (d?.kind === 'List' && Array.isArray(d.items) ? d.items : [d])) as (Obj | null)[]
    for (const [name, config] of Object.entries(decoded)) {
      if (!name.includes(' / ') || !config || typeof config !== 'object' || !('auto_auth' in config)) continue
      const [owner = '', containerName] = name.split(' / ')
      const [kind, objectName] = owner.split(' ')
      const doc = docs.find((d) => d?.kind === kind && d?.metadata?.name === objectName)
      const spec = doc ? podSpecOf(doc) : undefined
      const container = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].find((c: Obj) => c.name === containerName)
      const env = Object.fromEntries((container?.env ?? []).filter((e: Obj) => typeof e.value === 'string').map((e: Obj) => [e.name, e.value])) as Record<string, string>
      out.push({ name: `${file}: ${name}`, config: config as Obj, env })
    }
  }
  return out
}

// A JWT-shaped placeholder where the pod has a service-account token.
const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2ln'
const DEFAULT_SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token'

// The pod's paths moved under root, and the files the agent reads at start
// (tokens, TLS material, template files) created there, as the pod has them.
function prepare(config: Obj, root: string): Obj {
  const ca = generateCA({ commonName: 'agent config test CA', validityMs: 3_600_000 })
  const leaf = generateServingCert({ ca, hosts: ['localhost'], validityMs: 3_600_000 })
  const writeIfNamed = (podPath: unknown, text: string): void => {
    if (typeof podPath === 'string') writePodFile(root, podPath, text)
  }
  writeIfNamed(config.vault?.ca_cert, ca.certPem)
  writeIfNamed(config.vault?.client_cert, leaf.certPem)
  writeIfNamed(config.vault?.client_key, leaf.keyPem)
  writeIfNamed(config.auto_auth?.method?.config?.token_path, JWT)
  // The persistent cache reads the default token path unless told; the pod
  // has a token there when the configuration does not name another.
  writeIfNamed(config.cache?.persist?.service_account_token_file ?? (config.cache?.persist ? DEFAULT_SA_TOKEN : undefined), JWT)
  for (const template of config.template ?? []) writeIfNamed(template.source, '{{ with secret "kv/x" }}{{ .Data }}{{ end }}')
  for (const dir of ['/home/vault', '/vault/secrets', config.vault?.ca_path, config.cache?.persist?.path]) {
    if (typeof dir === 'string') mkdirSync(join(root, dir), { recursive: true })
  }

  const moved = movePodPaths(config, root)
  // The agent reads that default path itself, outside root: told explicitly here.
  if (moved.cache?.persist && !moved.cache.persist.service_account_token_file) moved.cache.persist.service_account_token_file = join(root, DEFAULT_SA_TOKEN)
  // Listeners on a free port of this machine rather than the pod's.
  for (const listener of moved.listener ?? []) listener.address = '127.0.0.1:0'
  // Vault's host name cannot be resolved here (no DNS): the same scheme and
  // port on loopback, so the agent does not wait on a lookup.
  if (typeof moved.vault?.address === 'string') {
    const url = new URL(moved.vault.address)
    url.hostname = '127.0.0.1'
    moved.vault.address = url.toString().replace(/\/$/, '')
  }
  return moved
}

async function runAgent(config: Obj, containerEnv: Record<string, string>, root: string): Promise<{ output: string; code: number | null }> {
  const file = join(root, 'config.json')
  writeFileSync(file, JSON.stringify(config))
  if (containerEnv.AWS_WEB_IDENTITY_TOKEN_FILE) writePodFile(root, containerEnv.AWS_WEB_IDENTITY_TOKEN_FILE, JWT)
  const env = movePodPaths(containerEnv, root)
  // No network here. At start the agent asks Vault (through the proxy, if
  // any) and retries VAULT_MAX_RETRIES times with backoff before its auth
  // handler starts: against nothing that is some 20 s. So no proxy and no
  // retries here; the variables' values were checked by the unit tests.
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy']) delete env[name]
  if (env.VAULT_MAX_RETRIES) env.VAULT_MAX_RETRIES = '0'
  // The AWS method fetches credentials when it is created; with IRSA that is an
  // STS call, which cannot leave this machine. Static keys come first in the
  // chain and stand in for it; the method's configuration is still checked.
  if (config.auto_auth?.method?.type === 'aws') Object.assign(env, { AWS_ACCESS_KEY_ID: 'AKIATESTTESTTESTTEST', AWS_SECRET_ACCESS_KEY: 'test' })
  // The container's settings, but logs at info in plain text, where the line looked for is.
  const agent = start(join(BIN, 'vault'), ['agent', `-config=${file}`], { ...env, VAULT_LOG_LEVEL: 'info', VAULT_LOG_FORMAT: 'standard' })
  const deadline = Date.now() + 8_000
  while (Date.now() < deadline && agent.child.exitCode === null && !STARTED.test(agent.output.join(''))) await new Promise((r) => setTimeout(r, 100))
  const code = agent.child.exitCode
  await agent.stop()
  return { output: agent.output.join(''), code }
}

const cases = goldenCases()

t.test('the golden files hold agent configurations to check', async (t) => {
  t.ok(cases.length >= 10, `${cases.length} configurations`)
  t.same(cases.filter((c) => c.env.VAULT_LOG_LEVEL === undefined).map((c) => c.name), [], 'each with its container\'s environment')
})

for (const { name, config, env } of cases) {
  t.test(name, async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'vault-injector-agent-config-'))
    t.teardown(() => rmSync(root, { recursive: true, force: true }))
    const { output, code } = await runAgent(prepare(config, root), env, root)
    const error = CONFIG_ERROR.exec(output)
    t.notOk(error, error ? `the agent refused its configuration: ${output.slice(Math.max(0, error.index - 200), error.index + 400)}` : 'no configuration error')
    t.match(output, STARTED, STARTED.test(output) ? 'the agent loaded it and started its auth handler' : `the agent did not start (exit ${code}): ${output.slice(-1500)}`)
  })
}

t.test('a configuration the agent cannot load is caught: the checks above can fail', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'vault-injector-agent-config-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const [first] = cases
  const broken = { ...prepare(first!.config, root), template_config: { exit_on_retry_failure: 'maybe' } }
  const { output } = await runAgent(broken, first!.env, root)
  t.match(output, CONFIG_ERROR, 'the agent refuses it, in words the check recognises')
  t.notMatch(output, STARTED, 'and never starts its auth handler')
})
