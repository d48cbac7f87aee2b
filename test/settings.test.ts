// Every setting is parsed at start with the annotation value parsers: the
// values vault-k8s and vault-helm use are accepted, anything else is named.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadSettings, SETTINGS, SettingsError, type Settings } from '../src/settings.ts'

const dir = mkdtempSync(join(tmpdir(), 'settings-'))
const FILE = join(dir, 'tls.crt')
writeFileSync(FILE, 'x')

function problems(env: Record<string, string>, flags: Record<string, string> = {}): string[] {
  try {
    loadSettings(env, flags)
    return []
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error
    return [...error.problems]
  }
}

// The confirmed bugs: each started and then misbehaved silently.
t.test('AGENT_INJECT_CPU_LIMIT=lots and --cpu-limit lots are refused, not dropped', async (t) => {
  t.same(problems({ AGENT_INJECT_CPU_LIMIT: 'lots' }), ['AGENT_INJECT_CPU_LIMIT: "lots" is not a Kubernetes quantity (e.g. 500m, 1)'])
  t.same(problems({}, { 'cpu-limit': 'lots' }), ['--cpu-limit: "lots" is not a Kubernetes quantity (e.g. 500m, 1)'])
})

t.test('--memory-limit 128MB is refused (128Mi or 128M are quantities)', async (t) => {
  t.same(problems({}, { 'memory-limit': '128MB' }), ['--memory-limit: "128MB" is not a Kubernetes quantity (e.g. 500m, 1)'])
  t.equal(loadSettings({}, { 'memory-limit': '128M' }).memLimit, '128M')
})

t.test('AGENT_INJECT_RUN_AS_USER=-5 is refused, not replaced by 100', async (t) => {
  t.same(problems({ AGENT_INJECT_RUN_AS_USER: '-5' }), ['AGENT_INJECT_RUN_AS_USER: "-5" is not a user or group ID (an integer from 0)'])
})

t.test('AGENT_INJECT_VAULT_ADDR=vault:8200 (no scheme) is refused at start', async (t) => {
  t.same(problems({ AGENT_INJECT_VAULT_ADDR: 'vault:8200' }), ['AGENT_INJECT_VAULT_ADDR: "vault:8200" is not an http or https URL (e.g. https://vault.example.com:8200)'])
})

t.test('every bad setting is reported, one message each', async (t) => {
  const found = problems({ AGENT_INJECT_CPU_LIMIT: 'lots', AGENT_INJECT_RUN_AS_GROUP: 'wheel' }, { 'log-level': 'loud' })
  t.equal(found.length, 3)
  t.match(found.join('\n'), /--log-level: "loud"/)
})

// What vault-helm's injector Deployment sets (values.yaml defaults and the
// common overrides), and vault-k8s's own spellings: all still accepted.
t.test('the values vault-helm and vault-k8s use are accepted', async (t) => {
  const helm = {
    AGENT_INJECT_LISTEN: ':8080',
    AGENT_INJECT_LOG_LEVEL: 'info',
    AGENT_INJECT_VAULT_ADDR: 'http://vault.vault.svc:8200',
    AGENT_INJECT_VAULT_AUTH_PATH: 'auth/kubernetes',
    AGENT_INJECT_VAULT_IMAGE: 'hashicorp/vault:1.21.0',
    AGENT_INJECT_TLS_AUTO: 'vault-agent-injector-cfg',
    AGENT_INJECT_TLS_AUTO_HOSTS: 'vault-agent-injector-svc,vault-agent-injector-svc.vault,vault-agent-injector-svc.vault.svc',
    AGENT_INJECT_LOG_FORMAT: 'standard',
    AGENT_INJECT_REVOKE_ON_SHUTDOWN: 'false',
    AGENT_INJECT_CPU_REQUEST: '250m',
    AGENT_INJECT_CPU_LIMIT: '500m',
    AGENT_INJECT_MEM_REQUEST: '64Mi',
    AGENT_INJECT_MEM_LIMIT: '128Mi',
    AGENT_INJECT_DEFAULT_TEMPLATE: 'map',
    AGENT_INJECT_TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE: 'true',
    AGENT_INJECT_SET_SECURITY_CONTEXT: 'true',
    AGENT_INJECT_RUN_AS_USER: '100',
    AGENT_INJECT_RUN_AS_GROUP: '1000',
    AGENT_INJECT_RUN_AS_SAME_USER: 'false',
    AGENT_INJECT_TELEMETRY_PATH: '/metrics',
    AGENT_INJECT_USE_LEADER_ELECTOR: 'true',
    AGENT_INJECT_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL: '',
    AGENT_INJECT_AUTH_MIN_BACKOFF: '',
    AGENT_INJECT_AUTH_MAX_BACKOFF: '',
    AGENT_INJECT_DISABLE_IDLE_CONNECTIONS: '',
    AGENT_INJECT_DISABLE_KEEP_ALIVES: '',
    NAMESPACE: 'vault',
    POD_NAME: 'vault-agent-injector-7d9c8b-x2x9z',
  }
  const s = loadSettings(helm, {})
  t.equal(s.vaultAddress, 'http://vault.vault.svc:8200')
  t.equal(s.useLeaderElector, true)
  t.equal(s.authMinBackoff, '', 'an empty backoff is left out')
  // An empty value keeps the default (vault-k8s skips empty variables)...
  const empty = loadSettings({ AGENT_INJECT_VAULT_AUTH_PATH: '', AGENT_INJECT_LOG_LEVEL: '', AGENT_INJECT_RUN_AS_USER: '', AGENT_INJECT_VAULT_ADDR: '' }, {})
  t.same([empty.authPath, empty.logLevel, empty.runAsUser, empty.vaultAddress], ['auth/kubernetes', 'info', 100, 'https://vault.vault.svc:8200'])
  // ...except for resources, where "" leaves the field out (as the flags do in vault-k8s).
  t.equal(loadSettings({ AGENT_INJECT_CPU_LIMIT: '' }, {}).cpuLimit, '')
  t.equal(loadSettings({ AGENT_INJECT_RUN_AS_USER: '' }, { 'run-as-user': '2000' }).runAsUser, 2000, 'an empty variable leaves the flag in force')
  // vault-k8s's other spellings.
  for (const [env, value] of [
    ['AGENT_INJECT_LOG_LEVEL', 'warning'], ['AGENT_INJECT_LOG_LEVEL', 'err'], ['AGENT_INJECT_LOG_LEVEL', 'notice'], ['AGENT_INJECT_LOG_LEVEL', 'DEBUG'],
    ['AGENT_INJECT_REVOKE_ON_SHUTDOWN', 'T'], ['AGENT_INJECT_REVOKE_ON_SHUTDOWN', '1'], ['AGENT_INJECT_USE_LEADER_ELECTOR', 'FALSE'],
    ['AGENT_INJECT_CPU_LIMIT', '1.5'], ['AGENT_INJECT_MEM_LIMIT', '1e9'], ['AGENT_INJECT_MEM_LIMIT', '128M'],
    ['AGENT_INJECT_AUTH_MIN_BACKOFF', '1s'], ['AGENT_INJECT_AUTH_MAX_BACKOFF', '5m'], ['AGENT_INJECT_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL', '30'],
    ['AGENT_INJECT_TEMPLATE_LEASE_RENEWAL_THRESHOLD', '0.9'], ['AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST', '10'],
    ['AGENT_INJECT_VAULT_ADDR', 'https://vault.example.com'], ['AGENT_INJECT_PROXY_ADDR', 'http://proxy:3128'],
    ['AGENT_INJECT_LISTEN', '127.0.0.1:8443'], ['AGENT_INJECT_LISTEN', '[::1]:8443'], ['AGENT_INJECT_TLS_MIN_VERSION', 'tls13'],
    ['AGENT_INJECT_DISABLE_IDLE_CONNECTIONS', 'auto-auth,caching,templating'],
  ]) {
    t.same(problems({ [env!]: value! }), [], `${env}=${value}`)
  }
  // vault-k8s takes "" from a flag as "leave the field out" for resources.
  const none = loadSettings({}, { 'cpu-limit': '', 'memory-limit': '', 'cpu-request': '', 'memory-request': '' })
  t.same([none.cpuLimit, none.memLimit, none.cpuRequest, none.memRequest], ['', '', '', ''])
})

// Every setting, one good and one bad value each; a new setting without a row fails here.
const CASES: Record<keyof Settings, [good: string, bad: string | undefined]> = {
  listen: [':9443', 'nonsense'],
  logLevel: ['debug', 'loud'],
  logFormat: ['json', 'xml'],
  tlsAuto: ['vault-injector', 'Not A Name'],
  tlsAutoHosts: ['a.example,b.example', undefined],
  tlsCertFile: [FILE, '/nonexistent/tls.crt'],
  tlsKeyFile: [FILE, '/nonexistent/tls.key'],
  tlsMinVersion: ['tls13', 'tls11'],
  tlsCipherSuites: ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'NOPE'],
  telemetryPath: ['/metrics', 'metrics'],
  useLeaderElector: ['true', 'yes'],
  namespace: ['vault', 'Vault_NS'],
  podName: ['injector-0', undefined],
  policyFile: [FILE, '/nonexistent/policy.yaml'],
  maxBodyBytes: ['8388608', '1024'],
  maxConcurrentRequests: ['64', '0'],
  csiRestartOnRotation: ['true', 'yes'],
  csiRestartMinIntervalSeconds: ['60', '-1'],
  csiRestartNamespaces: ['shop, payments', 'shop,Kube_System'],
  drainSeconds: ['2', '61'],
  vaultAddress: ['https://vault:8200', 'vault:8200'],
  vaultCACertBytes: ['-----BEGIN CERTIFICATE-----', undefined],
  proxyAddress: ['http://proxy:3128', 'proxy:3128'],
  vaultNamespace: ['team-a', undefined],
  vaultImage: ['hashicorp/vault:1.21.0', 'hashicorp/vault 1.21'],
  authType: ['jwt', undefined],
  authPath: ['auth/k8s', undefined],
  revokeOnShutdown: ['true', 'sometimes'],
  runAsUser: ['1000', '-5'],
  runAsGroup: ['0', 'wheel'],
  runAsSameUser: ['true', 'yes'],
  setSecurityContext: ['false', 'no'],
  defaultTemplate: ['json', 'yaml'],
  cpuRequest: ['100m', 'lots'],
  memRequest: ['32Mi', '32MB'],
  ephemeralRequest: ['1Gi', '1GB'],
  cpuLimit: ['1', 'lots'],
  memLimit: ['256Mi', '128MB'],
  ephemeralLimit: ['2Gi', 'big'],
  templateConfigExitOnRetryFailure: ['false', 'maybe'],
  templateConfigStaticSecretRenderInterval: ['5m', 'often'],
  templateConfigMaxConnectionsPerHost: ['10', '-1'],
  templateConfigLeaseRenewalThreshold: ['0.5', '2'],
  authMinBackoff: ['2s', '2'],
  authMaxBackoff: ['1m', 'later'],
  disableIdleConnections: ['caching', undefined],
  disableKeepAlives: ['proxying', undefined],
  projectServiceAccountToken: ['true', 'on'],
  tokenAudience: ['vault', undefined],
  tokenExpirationSeconds: ['7200', '60'],
  nativeSidecar: ['true', 'on'],
}

t.test('table: every setting accepts a good value and names a bad one, from env and flag', async (t) => {
  t.same(SETTINGS.map((s) => s.key).sort(), Object.keys(CASES).sort(), 'one case per setting')
  for (const spec of SETTINGS) {
    const [good, bad] = CASES[spec.key]
    const pair: Record<string, string> = spec.key === 'tlsCertFile' ? { AGENT_INJECT_TLS_KEY_FILE: FILE } : spec.key === 'tlsKeyFile' ? { AGENT_INJECT_TLS_CERT_FILE: FILE } : {}
    t.same(problems({ [spec.env]: good, ...pair }), [], `${spec.env}=${good}`)
    t.same(problems(pair, { [spec.flag]: good }), [], `--${spec.flag} ${good}`)
    if (bad === undefined) continue
    const fromEnv = problems({ [spec.env]: bad, ...pair })
    t.equal(fromEnv.length, 1, `${spec.env}=${bad}`)
    t.match(fromEnv[0], `${spec.env}: ${JSON.stringify(bad)} `)
    t.ok(fromEnv[0]!.length > `${spec.env}: ${JSON.stringify(bad)} `.length + 5, 'says what is accepted')
    const fromFlag = problems(pair, { [spec.flag]: bad })
    t.match(fromFlag[0], `--${spec.flag}: ${JSON.stringify(bad)} `)
    // An empty value is accepted: the default, or "leave the field out".
    t.same(problems({ [spec.env]: '' }), [], `${spec.env}=""`)
  }
})

t.test('the certificate and key files go together', async (t) => {
  t.same(problems({ AGENT_INJECT_TLS_CERT_FILE: FILE }), ['AGENT_INJECT_TLS_CERT_FILE and AGENT_INJECT_TLS_KEY_FILE go together: set both or neither'])
})

t.test('AGENT_INJECT_CSI_RESTART_NAMESPACES: names given twice are watched once; a name that is no namespace is refused', async (t) => {
  const { namespaceList } = await import('../src/webhook/settings.ts')
  const settings = loadSettings({ AGENT_INJECT_CSI_RESTART_NAMESPACES: 'shop, shop,payments' }, {})
  t.same(namespaceList(settings.csiRestartNamespaces), ['shop', 'payments'])
  t.throws(() => loadSettings({ AGENT_INJECT_CSI_RESTART_NAMESPACES: 'shop,Payments' }, {}), /AGENT_INJECT_CSI_RESTART_NAMESPACES: "shop,Payments" is not a comma list of namespace names/)
})
