import t from 'tap'
import { ANNOTATION_TABLE, ANNOTATIONS, fullName, matchAnnotation, VAULT_PREFIX } from '../../src/engine/annotations.ts'
import { readAnnotations } from '../../src/engine/read.ts'
import { defaultSettings, loadSettings, SETTINGS } from '../../src/settings.ts'

// The 74 annotation keys vault-k8s v1.7.6 defines (agent/annotations.go).
const VAULT_K8S_KEYS = `agent-inject agent-inject-status agent-pre-populate agent-pre-populate-only agent-init-first
agent-inject-containers agent-image agent-configmap agent-extra-secret agent-copy-volume-mounts agent-json-patch
agent-init-json-patch agent-share-process-namespace agent-request-namespace agent-inject-secret agent-inject-template
agent-inject-template-file agent-inject-default-template agent-inject-file agent-inject-perms agent-inject-command
agent-template-left-delim agent-template-right-delim error-on-missing-key secret-volume-path preserve-secret-case
agent-inject-token template-config-exit-on-retry-failure template-static-secret-render-interval
template-max-connections-per-host template-lease-renewal-threshold service namespace proxy-address tls-skip-verify
tls-server-name tls-secret ca-cert ca-key client-cert client-key client-max-retries client-timeout role auth-type
auth-path auth-config auth-min-backoff auth-max-backoff agent-auto-auth-exit-on-err
agent-service-account-token-volume-name agent-limits-cpu agent-limits-mem agent-limits-ephemeral agent-requests-cpu
agent-requests-mem agent-requests-ephemeral agent-run-as-user agent-run-as-group agent-run-as-same-user
agent-set-security-context agent-revoke-on-shutdown agent-revoke-grace go-max-procs log-level log-format
agent-disable-idle-connections agent-disable-keep-alives agent-cache-enable agent-cache-listener-port
agent-cache-use-auto-auth-token agent-cache-exit-on-err agent-enable-quit agent-telemetry`.split(/\s+/)

t.test('the table has every vault-k8s annotation, once, and nothing else under its prefix', async (t) => {
  t.equal(VAULT_K8S_KEYS.length, 74)
  const ours = ANNOTATIONS.filter((a) => a.prefix === VAULT_PREFIX).map((a) => a.name)
  t.same([...ours].sort(), [...VAULT_K8S_KEYS].sort())
  t.equal(new Set(ANNOTATIONS.map(fullName)).size, ANNOTATIONS.length, 'no duplicates')
  for (const a of ANNOTATIONS) t.ok(a.doc.length > 10, `${a.name} is documented`)
})

t.test('keys match the right row, longest prefix first', async (t) => {
  const cases: [string, string, string | undefined][] = [
    ['vault.hashicorp.com/agent-inject', 'agent-inject', undefined],
    ['vault.hashicorp.com/agent-inject-secret-db', 'agent-inject-secret', 'db'],
    ['vault.hashicorp.com/agent-inject-template-db', 'agent-inject-template', 'db'],
    ['vault.hashicorp.com/agent-inject-template-file-db', 'agent-inject-template-file', 'db'],
    ['vault.hashicorp.com/secret-volume-path', 'secret-volume-path', undefined],
    ['vault.hashicorp.com/secret-volume-path-db', 'secret-volume-path', 'db'],
    ['vault.hashicorp.com/auth-config-token-path', 'auth-config', 'token-path'],
    ['vault.hashicorp.com/agent-telemetry-statsd_address', 'agent-telemetry', 'statsd_address'],
    ['vault-injector.dev/native-sidecar', 'native-sidecar', undefined],
  ]
  for (const [key, name, suffix] of cases) {
    const m = matchAnnotation(key)
    t.equal(m?.spec.name, name, key)
    t.equal(m?.suffix, suffix, key)
  }
  t.equal(matchAnnotation('vault.hashicorp.com/agent-inject-secret-'), undefined, 'a prefix with no name is not a secret')
  t.equal(matchAnnotation('vault.hashicorp.com/no-such-thing'), undefined)
})

t.test('every default parses, from the table or from the injector settings', async (t) => {
  const reading = readAnnotations({}, {}, defaultSettings())
  t.same(reading.errors, [])
  for (const [key, a] of Object.entries(ANNOTATION_TABLE).filter(([, x]) => x.scope === 'pod' || x.scope === 'both')) {
    const value = (reading.pod as Record<string, unknown>)[key]
    if (a.defaulted) t.not(value, undefined, `${a.name} has a default`)
  }
  t.equal(reading.pod.limitsCpu, '500m')
  t.equal(reading.pod.runAsUser, 100)
  t.equal(reading.pod.prePopulate, true)
  t.equal(reading.pod.cacheListenerPort, 8200)
})

t.test('the record is typed: per-secret values fall back to the pod-wide ones', async (t) => {
  const reading = readAnnotations(
    {
      'vault.hashicorp.com/secret-volume-path': '/etc/secrets',
      'vault.hashicorp.com/agent-inject-secret-db': 'db/creds',
      'vault.hashicorp.com/agent-inject-secret-api': 'api/key',
      'vault.hashicorp.com/secret-volume-path-api': '/api',
      'vault.hashicorp.com/agent-inject-perms-api': '0400',
    },
    {},
    defaultSettings(),
  )
  t.same(reading.errors, [])
  t.same([...reading.secretNames('secret')].sort(), ['api', 'db'])
  t.equal(reading.secret('db').secretVolumePath, '/etc/secrets')
  t.equal(reading.secret('api').secretVolumePath, '/api')
  t.equal(reading.secret('api').perms, '0400')
  t.equal(reading.secret('db').perms, '')
  t.equal(reading.secret('db').leftDelim, '{{')
  t.equal(reading.secret('db').errorOnMissingKey, false)
})

t.test('settings: env overrides flags, as in vault-k8s; bad values are named', async (t) => {
  const s = loadSettings({ AGENT_INJECT_VAULT_ADDR: 'https://env:8200' }, { 'vault-address': 'https://flag:8200', 'cpu-limit': '2' })
  t.equal(s.vaultAddress, 'https://env:8200')
  t.equal(s.cpuLimit, '2')
  t.throws(() => loadSettings({ AGENT_INJECT_REVOKE_ON_SHUTDOWN: 'sometimes' }, {}), /AGENT_INJECT_REVOKE_ON_SHUTDOWN: "sometimes" is not a boolean/)
  t.throws(() => loadSettings({}, { 'run-as-user': 'x' }), /--run-as-user: "x" is not a user or group ID/)
  const envNames = SETTINGS.map((x) => x.env)
  for (const name of ['AGENT_INJECT_LISTEN', 'AGENT_INJECT_VAULT_ADDR', 'AGENT_INJECT_VAULT_IMAGE', 'AGENT_INJECT_VAULT_AUTH_PATH', 'AGENT_INJECT_MEM_LIMIT', 'AGENT_INJECT_EPHEMERAL_REQUEST', 'AGENT_INJECT_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL', 'AGENT_INJECT_TLS_AUTO', 'AGENT_INJECT_TLS_CERT_FILE', 'AGENT_INJECT_USE_LEADER_ELECTOR', 'AGENT_INJECT_PROXY_ADDR', 'AGENT_INJECT_VAULT_CACERT_BYTES']) {
    t.ok(envNames.includes(name), `${name} is read`)
  }
})
