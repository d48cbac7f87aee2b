// The differences issue 15 found by running vault-k8s's own handler beside
// ours (test/e2e/differential.e2e.ts), one test each: we now do what vault-k8s
// does, or deny on purpose (README, "Compatibility with vault-k8s").
import t from 'tap'
import { injectPod } from '../../src/engine/index.ts'
import { defaultSettings } from '../../src/settings.ts'
import type { EngineResult, JsonObject } from '../../src/engine/types.ts'
import { admitted, agentConfigOf, containerNamed, mountsOf, volumeNames } from '../helpers/pods.ts'

type Obj = Record<string, any>
const settings = defaultSettings()
const V = 'vault.hashicorp.com/'

function inject(pod: JsonObject, namespace = 'team-a'): EngineResult & { pod: Obj } {
  return injectPod({ pod, namespace, settings }) as EngineResult & { pod: Obj }
}

function pod(annotations: Record<string, string>, spec: Obj = {}): JsonObject {
  const a = Object.fromEntries(Object.entries(annotations).map(([k, v]) => [k.includes('/') ? k : V + k, v]))
  return admitted({ metadata: { name: 'web-1', annotations: { [`${V}agent-inject`]: 'true', ...a } }, spec: { containers: [{ name: 'web', image: 'nginx' }], ...spec } }, 'team-a')
}

function envOf(p: Obj, container: string): Obj[] {
  return containerNamed(p, container)!.env as Obj[]
}

t.test('1. status "injected" without the injected volumes: left unchanged, no mount of a missing volume', async (t) => {
  const r = inject(pod({ role: 'web', 'agent-inject-status': 'injected', 'agent-inject-secret-db': 'secret/db' }))
  t.equal(r.patch.length, 0, JSON.stringify(r.patch))
  t.equal(r.decision, 'skip')
  // vault-k8s checks the status before the namespace: an injected pod in a
  // system namespace passes too.
  const system = inject(pod({ role: 'web', 'agent-inject-status': 'injected' }), 'kube-system')
  t.equal(system.decision, 'skip', system.reason)
  t.equal(inject(pod({ role: 'web' }), 'kube-system').decision, 'deny')
  // vault-k8s never reads the annotations of an injected pod: nothing is denied.
  const bads: Record<string, string>[] = [{ 'agent-auto-auth-exit-on-err': 'yes' }, { 'auth-type': '' }, {}]
  for (const bad of bads) {
    const again = inject(pod({ 'agent-inject-status': 'injected', ...bad }))
    t.equal(again.decision, 'skip', again.reason)
    t.equal(again.patch.length, 0)
  }
})

t.test('2. agent-enable-quit alone: cache {} without use_auto_auth_token, as vault-k8s', async (t) => {
  const r = inject(pod({ role: 'web', 'agent-enable-quit': 'true' }))
  for (const name of ['vault-agent-init', 'vault-agent']) {
    const config = agentConfigOf(r.pod, name)
    t.same(config.cache, {}, name)
    t.same(config.listener, [{ type: 'tcp', address: '127.0.0.1:8200', tls_disable: true, agent_api: { enable_quit: true } }], name)
  }
  // With the cache on, the token stays in use as before.
  const cached = inject(pod({ role: 'web', 'agent-enable-quit': 'true', 'agent-cache-enable': 'true', 'agent-pre-populate': 'false' }))
  t.same(agentConfigOf(cached.pod, 'vault-agent').cache, { use_auto_auth_token: 'true' })
})

t.test('3. agent-configmap: VAULT_SKIP_VERIFY=false is set, as vault-k8s', async (t) => {
  const r = inject(pod({ 'agent-configmap': 'agent-config' }))
  t.same(envOf(r.pod, 'vault-agent').find((e) => e.name === 'VAULT_SKIP_VERIFY'), { name: 'VAULT_SKIP_VERIFY', value: 'false' })
  const skip = inject(pod({ 'agent-configmap': 'agent-config', 'tls-skip-verify': 'true' }))
  t.same(envOf(skip.pod, 'vault-agent').find((e) => e.name === 'VAULT_SKIP_VERIFY'), { name: 'VAULT_SKIP_VERIFY', value: 'true' })
  t.same(envOf(r.pod, 'vault-agent').map((e) => e.name).slice(5), ['VAULT_ADDR', 'VAULT_SKIP_VERIFY'])
})

t.test('4. agent-inject-template-file-X alone declares the secret X', async (t) => {
  const r = inject(pod({ role: 'web', 'agent-inject-template-file-app': '/vault/custom/app.tmpl' }))
  t.same(agentConfigOf(r.pod, 'vault-agent').template, [
    { destination: '/vault/secrets/app', left_delimiter: '{{', right_delimiter: '}}', source: '/vault/custom/app.tmpl' },
  ])
})

t.test('5. role wins over auth-config-role, as vault-k8s (the login role is the one policy sees)', async (t) => {
  const r = inject(pod({ role: 'web', 'auth-config-role': 'admin' }))
  t.equal(agentConfigOf(r.pod, 'vault-agent').auto_auth.method.config.role, 'web')
  t.equal(r.agent!.role, 'web')
  const only = inject(pod({ 'auth-config-role': 'reader' }))
  t.equal(agentConfigOf(only.pod, 'vault-agent').auto_auth.method.config.role, 'reader')
  t.equal(only.agent!.role, 'reader')
})

t.test('6. auth-type aws with auth-config-region: AWS_REGION on the agents, last', async (t) => {
  const r = inject(pod({ role: 'web', 'auth-type': 'aws', 'auth-config-region': 'eu-central-1' }, {
    containers: [{ name: 'web', image: 'nginx', env: [{ name: 'AWS_REGION', value: 'eu-west-1' }, { name: 'AWS_ROLE_ARN', value: 'arn:x' }] }],
  }))
  const names = envOf(r.pod, 'vault-agent').map((e) => `${e.name}=${e.value ?? ''}`)
  t.same(names.slice(-3), ['AWS_ROLE_ARN=arn:x', 'AWS_REGION=eu-west-1', 'AWS_REGION=eu-central-1'])
})

t.test('7. revoke on shutdown keeps -client-cert and -client-key', async (t) => {
  const r = inject(pod({ role: 'web', 'agent-revoke-on-shutdown': 'true', 'ca-cert': '/vault/tls/ca.crt', 'client-cert': '/vault/tls/c.crt', 'client-key': '/vault/tls/c.key' }))
  t.same(containerNamed(r.pod, 'vault-agent')!.lifecycle.preStop.exec.command, [
    '/bin/sh',
    '-c',
    '/bin/sleep 5 && /bin/vault token revoke -address=https://vault.vault.svc:8200 -ca-cert=/vault/tls/ca.crt -client-cert=/vault/tls/c.crt -client-key=/vault/tls/c.key -self',
  ])
})

t.test('8. re-admitting a pod whose custom secret volumes another injector numbered differently changes nothing', async (t) => {
  const first = inject(pod({ role: 'web', 'agent-inject-secret-a': 'kv/a', 'agent-inject-secret-b': 'kv/b', 'secret-volume-path-a': '/etc/a', 'secret-volume-path-b': '/etc/b' }))
  // vault-k8s numbers vault-secrets-custom-N in Go map order: swap ours.
  const swapped = JSON.parse(JSON.stringify(first.pod).replace(/vault-secrets-custom-0/g, 'TMP').replace(/vault-secrets-custom-1/g, 'vault-secrets-custom-0').replace(/TMP/g, 'vault-secrets-custom-1'))
  const again = inject(swapped)
  t.equal(again.patch.length, 0, JSON.stringify(again.patch))
})

t.test('9. agent-inject-secret-x with an empty or blank path is ignored', async (t) => {
  for (const value of ['', ' ']) {
    const r = inject(pod({ role: 'web', 'agent-inject-secret-x': value, 'agent-inject-secret-db': 'kv/db' }))
    t.same(agentConfigOf(r.pod, 'vault-agent').template.map((x: Obj) => x.destination), ['/vault/secrets/db'], JSON.stringify(value))
  }
})

t.test('10. agent-inject-containers is split on commas without trimming; "" selects none', async (t) => {
  const spec = { containers: [{ name: 'nginx', image: 'nginx' }, { name: 'envoy', image: 'envoy' }] }
  const spaced = inject(pod({ role: 'web', 'agent-inject-containers': 'nginx, envoy' }, spec))
  t.ok(mountsOf(spaced.pod, 'nginx').some((m) => m.name === 'vault-secrets'))
  t.notOk(mountsOf(spaced.pod, 'envoy').some((m) => m.name === 'vault-secrets'))
  const none = inject(pod({ role: 'web', 'agent-inject-containers': '' }, spec))
  t.equal(none.decision, 'inject')
  t.notOk(mountsOf(none.pod, 'nginx').some((m) => m.name === 'vault-secrets'))
  t.notOk(mountsOf(none.pod, 'envoy').some((m) => m.name === 'vault-secrets'))
})

t.test('11. every auth type gets token_path in its method config', async (t) => {
  for (const type of ['jwt', 'approle', 'aws', 'gcp']) {
    const r = inject(pod({ role: 'web', 'auth-type': type }))
    t.equal(agentConfigOf(r.pod, 'vault-agent').auto_auth.method.config.token_path, '/var/run/secrets/kubernetes.io/serviceaccount/token', type)
  }
})

t.test('12. allowed and denied as vault-k8s', async (t) => {
  const copy = inject(pod({ role: 'web', 'agent-copy-volume-mounts': 'no-such-container' }))
  t.equal(copy.decision, 'inject', copy.reason)
  t.same(mountsOf(copy.pod, 'vault-agent').map((m) => m.name).slice(1), ['home-sidecar', 'vault-secrets'])

  const emptyAuth = inject(pod({ role: 'web', 'auth-type': '' }))
  t.equal(emptyAuth.decision, 'deny')
  t.match(emptyAuth.reason, /auth-type/)

  for (const level of ['warning', 'DEBUG', 'notice', 'err', 'Info']) {
    const r = inject(pod({ role: 'web', 'log-level': level }))
    t.equal(r.decision, 'inject', level)
    t.same(envOf(r.pod, 'vault-agent').find((e) => e.name === 'VAULT_LOG_LEVEL'), { name: 'VAULT_LOG_LEVEL', value: level })
  }
  const json = inject(pod({ role: 'web', 'log-format': 'JSON' }))
  t.same(envOf(json.pod, 'vault-agent').find((e) => e.name === 'VAULT_LOG_FORMAT'), { name: 'VAULT_LOG_FORMAT', value: 'JSON' })
  t.equal(inject(pod({ role: 'web', 'log-level': 'verbose' })).decision, 'deny', 'a level the agent refuses is still denied')

  const off = inject(pod({ role: 'web', 'agent-inject': '' }))
  t.equal(off.decision, 'skip')
  t.equal(off.patch.length, 0)

  // Kept on purpose: no agent at all is not what anyone asked for.
  t.equal(inject(pod({ role: 'web', 'agent-pre-populate': 'false', 'agent-pre-populate-only': 'true' })).decision, 'deny')
  t.same(volumeNames(copy.pod).slice(-3), ['home-init', 'home-sidecar', 'vault-secrets'])
})
