// Property: for random json-patch annotations (allowed by name, so the patched
// agents must still be judged) and random annotation overrides, whatever the
// webhook admits satisfies every pin of the policy. The oracle below reads the
// admitted pod on its own, without the policy code.
import t from 'tap'
import fc from 'fast-check'
import fastJsonPatch from 'fast-json-patch'
import { defaultSettings } from '../../src/settings.ts'
import { parsePolicy } from '../../src/policy/load.ts'
import { admit } from '../../src/webhook/admission.ts'
import { annotatedPod } from '../helpers/pods.ts'
import { PATCHES_ALLOWED } from '../helpers/policies.ts'

type Obj = Record<string, any>
const V = 'vault.hashicorp.com/'
const settings = defaultSettings()
const policy = parsePolicy(PATCHES_ALLOWED, 'policy.yaml')
const RUNS = Number(process.env.PROPERTY_RUNS ?? 400)
const ALLOWED_ADDRESSES = new Set(['https://a.vault.corp.example.com:8200', 'https://vault-dr.corp.example.com:8443'])
const ARGS = ['echo ${VAULT_CONFIG?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json']
const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64')

function config(role: string, address: string, path: string): string {
  return b64({
    auto_auth: { method: { type: 'kubernetes', mount_path: 'auth/kubernetes', config: { role, token_path: '/var/run/secrets/kubernetes.io/serviceaccount/token' } }, sink: [{ type: 'file', config: { path: '/home/vault/.vault-token' } }] },
    exit_after_auth: false,
    pid_file: '/home/vault/.pid',
    vault: { address },
    template: [{ destination: '/vault/secrets/x', contents: `{{ with secret "${path}" }}{{ end }}` }],
  })
}

const address = fc.constantFrom('https://a.vault.corp.example.com:8200', 'https://attacker.example', 'https://vault-dr.corp.example.com:8443@attacker.example', 'https://a.b.vault.corp.example.com:8200', 'http://a.vault.corp.example.com:8200', 'https://vault-dr.corp.example.com:8443')
const envEntry = fc.oneof(
  fc.record({ name: fc.constant('VAULT_ADDR'), value: address }),
  fc.record({ name: fc.constant('VAULT_NAMESPACE'), value: fc.constantFrom('team-a', 'team-b') }),
  fc.record({ name: fc.constant('VAULT_SKIP_VERIFY'), value: fc.constantFrom('true', 'false', '1') }),
  fc.record({ name: fc.constantFrom('HTTPS_PROXY', 'VAULT_CACERT', 'LD_PRELOAD', 'TZ'), value: fc.constantFrom('x', 'http://proxy:3128') }),
  fc.record({ name: fc.constant('VAULT_CONFIG'), value: fc.tuple(fc.constantFrom('app', 'admin'), address, fc.constantFrom('secret/data/team-a/x', 'secret/data/team-b/x')).map(([r, a, p]) => config(r, a, p)) }),
)
const securityContext = fc.record({ privileged: fc.boolean(), runAsUser: fc.constantFrom(0, 100), allowPrivilegeEscalation: fc.boolean(), readOnlyRootFilesystem: fc.boolean(), capabilities: fc.constantFrom({ drop: ['ALL'] }, { add: ['NET_ADMIN'], drop: ['ALL'] }, {}) }, { requiredKeys: [] })
const harmless = fc.oneof(
  fc.record({ op: fc.constant('add'), path: fc.constant('/env/-'), value: fc.constant({ name: 'TZ', value: 'UTC' }) }),
  fc.record({ op: fc.constant('replace'), path: fc.constant('/image'), value: fc.constant('hashicorp/vault:9.9.9') }),
  fc.record({ op: fc.constant('replace'), path: fc.constant('/resources'), value: fc.constant({ limits: { cpu: '1', memory: '1Gi' } }) }),
  fc.record({ op: fc.constant('add'), path: fc.constant('/volumeMounts/-'), value: fc.constant({ name: 'vault-secrets', mountPath: '/data' }) }),
)
const anyOp = fc.oneof(
  fc.record({ op: fc.constant('replace'), path: fc.constant('/image'), value: fc.constantFrom('hashicorp/vault:9.9.9', 'evil.example/vault:1') }),
  fc.record({ op: fc.constant('add'), path: fc.constant('/env/-'), value: envEntry }),
  fc.record({ op: fc.constant('replace'), path: fc.constant('/securityContext'), value: securityContext }),
  fc.record({ op: fc.constant('add'), path: fc.constantFrom('/securityContext/privileged', '/securityContext/runAsUser', '/securityContext/allowPrivilegeEscalation'), value: fc.constantFrom(true, 0, false) }),
  fc.record({ op: fc.constant('replace'), path: fc.constant('/resources'), value: fc.constantFrom({}, { limits: { cpu: '1', memory: '1Gi' } }, { requests: { cpu: '1' } }) }),
  fc.record({ op: fc.constant('replace'), path: fc.constantFrom('/args/0', '/command/1'), value: fc.constantFrom('vault agent -config=/tmp/x', '-c') }),
  fc.record({ op: fc.constant('add'), path: fc.constant('/volumeMounts/-'), value: fc.constantFrom({ name: 'vault-secrets', mountPath: '/etc/ssl' }, { name: 'vault-secrets', mountPath: '/data' }) }),
  fc.record({ op: fc.constant('replace'), path: fc.constant('/name'), value: fc.constant('helper') }),
)
const op = fc.oneof({ weight: 3, arbitrary: harmless }, { weight: 2, arbitrary: anyOp })
// Mostly values within the pins, so that many pods are admitted and checked.
const mostly = <T,>(good: T, ...bad: T[]): fc.Arbitrary<T> => fc.oneof({ weight: 6, arbitrary: fc.constant(good) }, { weight: 1, arbitrary: fc.constantFrom(...bad) })
const overrides = fc.record(
  {
    [`${V}role`]: mostly('app', 'admin', 'App'),
    [`${V}auth-config-role`]: mostly('app', 'admin'),
    [`${V}auth-path`]: mostly('auth/kubernetes', 'auth/other'),
    [`${V}service`]: fc.oneof({ weight: 4, arbitrary: fc.constant('https://a.vault.corp.example.com:8200') }, { weight: 1, arbitrary: address }),
    [`${V}namespace`]: mostly('team-a', 'team-b'),
    [`${V}agent-image`]: mostly('hashicorp/vault:1.21.0', 'evil.example/vault:1'),
    [`${V}agent-limits-cpu`]: mostly('250m', ''),
    [`${V}agent-limits-mem`]: mostly('64Mi', ''),
    [`${V}agent-run-as-user`]: mostly('100', '0'),
    [`${V}agent-set-security-context`]: mostly('true', 'false'),
    [`${V}tls-skip-verify`]: mostly('false', 'true'),
    [`${V}agent-inject-secret-x`]: mostly('secret/data/team-a/x', 'secret/data/team-b/x', 'secret/data/team-a/../team-b/x'),
    [`${V}agent-json-patch`]: fc.array(op, { minLength: 1, maxLength: 3 }).map((ops) => JSON.stringify(ops)),
    [`${V}agent-init-json-patch`]: fc.array(op, { minLength: 1, maxLength: 3 }).map((ops) => JSON.stringify(ops)),
  },
  { requiredKeys: [] },
)

// Everything the pins restrict, read from the admitted pod alone.
function violations(pod: Obj): string[] {
  const out: string[] = []
  for (const c of [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])]) if (!['app', 'vault-agent', 'vault-agent-init'].includes(c.name)) out.push(`unknown container ${c.name}`)
  const agents = [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])].filter((c: Obj) => c.name === 'vault-agent' || c.name === 'vault-agent-init')
  for (const c of agents) {
    const env = (name: string): string | undefined => (c.env ?? []).findLast((e: Obj) => e.name === name)?.value
    if (!String(c.image).startsWith('hashicorp/vault:')) out.push(`${c.name} image ${c.image}`)
    if (c.resources?.limits?.cpu === undefined || c.resources?.limits?.memory === undefined) out.push(`${c.name} limits`)
    const sc = { ...(pod.spec.securityContext ?? {}), ...(c.securityContext ?? {}) }
    if (sc.runAsUser === 0 || (sc.runAsUser === undefined && sc.runAsNonRoot !== true)) out.push(`${c.name} root`)
    if (sc.privileged === true || sc.allowPrivilegeEscalation !== false || sc.readOnlyRootFilesystem !== true) out.push(`${c.name} privileges`)
    if (!(sc.capabilities?.drop ?? []).includes('ALL') || (sc.capabilities?.add ?? []).length > 0) out.push(`${c.name} capabilities`)
    if (JSON.stringify(c.args) !== JSON.stringify(ARGS) || JSON.stringify(c.command) !== JSON.stringify(['/bin/sh', '-ec'])) out.push(`${c.name} command`)
    if (env('VAULT_ADDR') !== undefined && !ALLOWED_ADDRESSES.has(env('VAULT_ADDR')!)) out.push(`${c.name} VAULT_ADDR`)
    if (env('VAULT_NAMESPACE') !== undefined && env('VAULT_NAMESPACE') !== 'team-a') out.push(`${c.name} VAULT_NAMESPACE`)
    if (/^(1|t|true)$/i.test(env('VAULT_SKIP_VERIFY') ?? '')) out.push(`${c.name} VAULT_SKIP_VERIFY`)
    for (const name of ['HTTPS_PROXY', 'VAULT_CACERT', 'LD_PRELOAD']) if (env(name) !== undefined) out.push(`${c.name} ${name}`)
    if ((c.volumeMounts ?? []).some((m: Obj) => m.mountPath === '/etc/ssl')) out.push(`${c.name} mount over /etc/ssl`)
    const cfg = JSON.parse(Buffer.from(env('VAULT_CONFIG') ?? '', 'base64').toString() || '{}')
    const method = cfg.auto_auth?.method ?? {}
    if (method.config?.role !== 'app') out.push(`${c.name} role ${method.config?.role}`)
    if (method.mount_path !== 'auth/kubernetes') out.push(`${c.name} auth path`)
    if (!ALLOWED_ADDRESSES.has(cfg.vault?.address)) out.push(`${c.name} address ${cfg.vault?.address}`)
    if (method.namespace !== undefined && method.namespace !== 'team-a') out.push(`${c.name} namespace`)
    if (cfg.vault?.tls_skip_verify === true) out.push(`${c.name} tls_skip_verify`)
    for (const tpl of cfg.template ?? []) {
      for (const m of String(tpl.contents).matchAll(/secret "([^"]*)"/g)) if (!m[1]!.startsWith('secret/data/team-a/') || m[1]!.includes('..')) out.push(`${c.name} reads ${m[1]}`)
    }
  }
  return out
}

t.test('random patches and overrides: whatever is admitted keeps every pin', async (t) => {
  let admitted = 0
  let denied = 0
  fc.assert(
    fc.property(overrides, (annotations) => {
      const pod = annotatedPod(annotations)
      const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'team-a', operation: 'CREATE', object: pod } }
      const response = admit(review, { settings, policy }).body.response as Obj
      if (!response.allowed || !response.patch) {
        denied++
        return true
      }
      admitted++
      const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString())
      const final = fastJsonPatch.applyPatch(structuredClone(pod), ops, true, false).newDocument as Obj
      const problems = violations(final)
      if (problems.length > 0) throw new Error(`admitted with ${problems.join(', ')}: ${JSON.stringify(annotations)}`)
      return true
    }),
    { numRuns: RUNS },
  )
  t.ok(denied > 0, `${denied} denied`)
  t.comment(`${admitted} admitted, ${denied} denied`)
})

t.test('the property is not vacuous: pods within the pins, patched harmlessly, are admitted', async (t) => {
  const pod = annotatedPod({ [`${V}agent-inject-secret-x`]: 'secret/data/team-a/x', [`${V}agent-json-patch`]: JSON.stringify([{ op: 'replace', path: '/image', value: 'hashicorp/vault:9.9.9' }]) })
  const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'team-a', operation: 'CREATE', object: pod } }
  const response = admit(review, { settings, policy }).body.response as Obj
  t.equal(response.allowed, true, JSON.stringify(response.status))
})
