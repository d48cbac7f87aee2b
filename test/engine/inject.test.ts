import t from 'tap'
import fastJsonPatch from 'fast-json-patch'
import { injectPod } from '../../src/engine/index.ts'
import { defaultSettings, loadSettings } from '../../src/settings.ts'
import type { EngineResult, JsonObject } from '../../src/engine/types.ts'
import { admitted, agentConfigOf, annotatedPod, containerNamed, fixture, mountsOf, volumeNames } from '../helpers/pods.ts'

const settings = defaultSettings()
type Obj = Record<string, any>

function inject(pod: JsonObject, namespace = 'team-a', s = settings): EngineResult & { pod: Obj } {
  return injectPod({ pod, namespace, settings: s }) as EngineResult & { pod: Obj }
}

function applyPatch(pod: JsonObject, result: EngineResult): Obj {
  return fastJsonPatch.applyPatch(structuredClone(pod), structuredClone(result.patch), true, false).newDocument
}

t.test('the vault-k8s documentation example gets what vault-k8s gives it', async (t) => {
  const pod = fixture('pod-web.json')
  const r = inject(pod, 'shop')
  t.equal(r.decision, 'inject', r.reason)
  t.same(r.pod.spec.initContainers.map((c: Obj) => c.name), ['vault-agent-init'])
  t.same(r.pod.spec.containers.map((c: Obj) => c.name), ['web', 'vault-agent'])
  t.same(volumeNames(r.pod), ['kube-api-access-9xk2p', 'home-init', 'home-sidecar', 'vault-secrets'])
  t.same(r.pod.spec.volumes.slice(1).map((v: Obj) => v.emptyDir), [{ medium: 'Memory' }, { medium: 'Memory' }, { medium: 'Memory' }])
  t.same(mountsOf(r.pod, 'web').map((m) => m.name), ['kube-api-access-9xk2p', 'vault-secrets'])
  t.same(mountsOf(r.pod, 'vault-agent-init'), [
    { name: 'home-init', mountPath: '/home/vault' },
    { name: 'kube-api-access-9xk2p', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
    { name: 'vault-secrets', mountPath: '/vault/secrets' },
  ])
  t.same(mountsOf(r.pod, 'vault-agent').map((m) => m.name), ['kube-api-access-9xk2p', 'home-sidecar', 'vault-secrets'])
  t.equal(r.pod.metadata.annotations['vault.hashicorp.com/agent-inject-status'], 'injected')

  const sidecar = containerNamed(r.pod, 'vault-agent')!
  t.same(sidecar.command, ['/bin/sh', '-ec'])
  t.same(sidecar.args, ['echo ${VAULT_CONFIG?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json'])
  t.same(sidecar.env.map((e: Obj) => e.name), ['NAMESPACE', 'HOST_IP', 'POD_IP', 'VAULT_LOG_LEVEL', 'VAULT_LOG_FORMAT', 'VAULT_CONFIG'])
  t.same(sidecar.resources, { limits: { cpu: '500m', memory: '128Mi' }, requests: { cpu: '250m', memory: '64Mi' } })
  t.same(sidecar.securityContext, {
    runAsUser: 100,
    runAsGroup: 1000,
    runAsNonRoot: true,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  })
  t.same(sidecar.lifecycle, {})
  t.equal(sidecar.image, 'hashicorp/vault:2.0.4')

  const init = agentConfigOf(r.pod, 'vault-agent-init')
  const side = agentConfigOf(r.pod, 'vault-agent')
  t.equal(init.exit_after_auth, true)
  t.equal(side.exit_after_auth, false)
  t.same(init.auto_auth, {
    method: { type: 'kubernetes', mount_path: 'auth/kubernetes', config: { role: 'web', token_path: '/var/run/secrets/kubernetes.io/serviceaccount/token' } },
    sink: [{ type: 'file', config: { path: '/home/vault/.vault-token' } }],
  })
  t.same(init.vault, { address: 'https://vault.vault.svc:8200' })
  t.equal(init.pid_file, '/home/vault/.pid')
  t.same(init.template_config, { exit_on_retry_failure: true })
  t.same(
    init.template.map((x: Obj) => x.destination),
    ['/vault/secrets/api-key', '/vault/secrets/config', '/vault/secrets/db-creds'],
    'templates in name order',
  )
  t.equal(init.template[1].contents, '{{ with secret "secret/data/web/config" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}')
  t.match(init.template[2].contents, /postgresql:\/\//)
  t.same(Object.keys(init), ['auto_auth', 'exit_after_auth', 'pid_file', 'vault', 'template', 'template_config'])
})

t.test('the patch is a minimal set of adds that reproduces the mutated pod', async (t) => {
  const pod = fixture('pod-web.json')
  const r = inject(pod, 'shop')
  t.ok(r.patch.every((op) => op.op === 'add'), 'only adds')
  t.notOk(r.patch.some((op) => op.path.startsWith('/metadata/managedFields')), 'managedFields not in the patch')
  t.same(applyPatch(pod, r), r.pod)
  t.same(r.pod.metadata.managedFields, pod.metadata.managedFields, 'managedFields kept')
  t.same(
    r.patch.map((op) => op.path).sort(),
    [
      '/metadata/annotations/vault.hashicorp.com~1agent-inject-status',
      '/spec/containers/-',
      '/spec/containers/0/volumeMounts/-',
      '/spec/initContainers',
      '/spec/volumes/-',
      '/spec/volumes/-',
      '/spec/volumes/-',
    ].sort(),
  )
})

t.test('decisions before injection', async (t) => {
  const base = annotatedPod({})
  const withAnnotations = (a: Record<string, string>): JsonObject => {
    const pod = structuredClone(base) as Obj
    Object.assign(pod.metadata.annotations, a)
    return pod
  }
  const unannotated = admitted({ spec: { containers: [{ name: 'a', image: 'b' }] } })
  t.match(inject(unannotated), { decision: 'skip', reason: /not annotated/, patch: [] })
  t.match(inject(withAnnotations({ 'vault.hashicorp.com/agent-inject': 'false' })), { decision: 'skip', patch: [] })
  t.match(inject(withAnnotations({ 'vault.hashicorp.com/agent-inject': 'yes' })), {
    decision: 'deny',
    reason: 'vault.hashicorp.com/agent-inject: "yes" is not a boolean (true or false)',
  })
  const running = structuredClone(base) as Obj
  running.status.phase = 'Running'
  t.match(inject(running), { decision: 'skip', reason: /Running, not Pending/ })
  for (const ns of ['kube-system', 'kube-public']) {
    t.match(inject(base, ns), { decision: 'deny', reason: `error with request namespace: cannot inject into system namespaces: ${ns}` })
  }
  const injected = inject(base).pod
  t.match(inject(injected), { decision: 'skip', reason: 'already injected', patch: [] })
})

t.test('invalid annotations deny with the annotation, the value and what is accepted', async (t) => {
  const cases: [string, string, string][] = [
    ['agent-limits-cpu', 'lots', 'vault.hashicorp.com/agent-limits-cpu: "lots" is not a Kubernetes quantity (e.g. 500m, 1)'],
    ['agent-requests-mem', '64 MB', 'vault.hashicorp.com/agent-requests-mem: "64 MB" is not a Kubernetes quantity (e.g. 500m, 1)'],
    ['agent-pre-populate', 'maybe', 'vault.hashicorp.com/agent-pre-populate: "maybe" is not a boolean (true or false)'],
    ['agent-inject-default-template', 'xml', 'vault.hashicorp.com/agent-inject-default-template: "xml" is not accepted (map, json)'],
    ['agent-run-as-user', '-1', 'vault.hashicorp.com/agent-run-as-user: "-1" is not a user or group ID (an integer from 0)'],
    ['agent-cache-listener-port', '70000', 'vault.hashicorp.com/agent-cache-listener-port: "70000" is not a port number (1-65535)'],
    ['auth-min-backoff', '5 seconds', 'vault.hashicorp.com/auth-min-backoff: "5 seconds" is not a duration (e.g. 1s, 500ms, 2m)'],
    ['service', 'vault:8200', 'vault.hashicorp.com/service: "vault:8200" is not an http or https URL (e.g. https://vault.example.com:8200)'],
    ['agent-json-patch', '{"op":"add"}', 'vault.hashicorp.com/agent-json-patch: "{\\"op\\":\\"add\\"}" is not a JSON Patch (a JSON array of at most 100 RFC 6902 operations, nested at most 32 levels)'],
    ['agent-inject-perms-db', '999', 'vault.hashicorp.com/agent-inject-perms-db: "999" is not an octal file mode (e.g. 0400, 0644)'],
    ['log-level', 'loud', 'vault.hashicorp.com/log-level: "loud" is not accepted (trace, debug, notice, info, warn, warning, err, error; any case)'],
    ['template-lease-renewal-threshold', '2', 'vault.hashicorp.com/template-lease-renewal-threshold: "2" is not a fraction between 0 and 1 (e.g. 0.9)'],
    ['tls-secret', 'Not_A_Name', 'vault.hashicorp.com/tls-secret: "Not_A_Name" is not a Kubernetes object name (lowercase letters, digits, "-" and ".")'],
    ['secret-volume-path', 'relative/path', 'vault.hashicorp.com/secret-volume-path: "relative/path" is not an absolute path without ".." (e.g. /vault/secrets)'],
    ['agent-cache-use-auto-auth-token', 'always', 'vault.hashicorp.com/agent-cache-use-auto-auth-token: "always" is not accepted (true, false or force)'],
  ]
  for (const [name, value, message] of cases) {
    const r = inject(annotatedPod({ 'vault.hashicorp.com/agent-inject-secret-db': 'secret/db', [`vault.hashicorp.com/${name}`]: value }))
    t.equal(r.decision, 'deny', name)
    t.equal(r.reason, message, name)
    t.same(r.patch, [], `${name}: no patch`)
  }
  const many = inject(annotatedPod({ 'vault.hashicorp.com/agent-limits-cpu': 'lots', 'vault.hashicorp.com/agent-limits-mem': 'heaps' }))
  t.match(many.reason, /agent-limits-cpu: "lots".*; vault\.hashicorp\.com\/agent-limits-mem: "heaps"/, 'every problem is named')
  const control = inject(annotatedPod({ 'vault.hashicorp.com/agent-limits-cpu': 'x\u0000\n'.repeat(100) }))
  t.match(control.reason, /^vault\.hashicorp\.com\/agent-limits-cpu: "x\\u0000\\nx.*…" is not a Kubernetes quantity/, 'control characters escaped, value shortened')
  const noRole = inject(admitted({ metadata: { annotations: { 'vault.hashicorp.com/agent-inject': 'true' } }, spec: { containers: [{ name: 'a', image: 'b' }] } }))
  t.match(noRole, { decision: 'deny', reason: /vault\.hashicorp\.com\/role: missing/ })
})

t.test('"" omits a resource, as vault-k8s PR #174', async (t) => {
  const r = inject(annotatedPod({ 'vault.hashicorp.com/agent-limits-cpu': '', 'vault.hashicorp.com/agent-limits-mem': '', 'vault.hashicorp.com/agent-requests-cpu': '10m' }))
  t.same(containerNamed(r.pod, 'vault-agent')!.resources, { requests: { cpu: '10m', memory: '64Mi' } })
})

t.test('injector-wide settings from AGENT_INJECT_* are the defaults; annotations win', async (t) => {
  const s = loadSettings({ AGENT_INJECT_VAULT_ADDR: 'https://vault.corp:8200', AGENT_INJECT_VAULT_IMAGE: 'hashicorp/vault:1.20.0', AGENT_INJECT_CPU_LIMIT: '1', AGENT_INJECT_DEFAULT_TEMPLATE: 'json', AGENT_INJECT_VAULT_AUTH_PATH: 'auth/k8s-east' }, {})
  const r = inject(annotatedPod({ 'vault.hashicorp.com/agent-inject-secret-db': 'secret/db' }), 'team-a', s)
  const sidecar = containerNamed(r.pod, 'vault-agent')!
  t.equal(sidecar.image, 'hashicorp/vault:1.20.0')
  t.equal(sidecar.resources.limits.cpu, '1')
  const config = agentConfigOf(r.pod)
  t.equal(config.vault.address, 'https://vault.corp:8200')
  t.equal(config.auto_auth.method.mount_path, 'auth/k8s-east')
  t.equal(config.template[0].contents, '{{ with secret "secret/db" }}{{ .Data | toJSON }}\n{{ end }}')
  const own = inject(annotatedPod({ 'vault.hashicorp.com/service': 'https://other:8200', 'vault.hashicorp.com/agent-image': 'my/vault:1' }), 'team-a', s)
  t.equal(agentConfigOf(own.pod).vault.address, 'https://other:8200')
  t.equal(containerNamed(own.pod, 'vault-agent')!.image, 'my/vault:1')
})

t.test('namespace defaults sit between the pod and the injector-wide settings', async (t) => {
  const pod = annotatedPod({ 'vault.hashicorp.com/auth-path': 'auth/pod' })
  const r = injectPod({ pod, namespace: 'team-a', settings, annotationDefaults: { 'vault.hashicorp.com/auth-path': 'auth/ns', 'vault.hashicorp.com/ca-cert': '/vault/tls/ca.crt' } })
  const config = agentConfigOf(r.pod as Obj)
  t.equal(config.auto_auth.method.mount_path, 'auth/pod')
  t.equal(config.vault.ca_cert, '/vault/tls/ca.crt')
  const bad = injectPod({ pod, namespace: 'team-a', settings, annotationDefaults: { 'vault.hashicorp.com/agent-limits-cpu': 'lots' } })
  t.match(bad.reason, /\(namespace default from policy\)/)
})

t.test('secrets and templates', async (t) => {
  const r = inject(
    annotatedPod({
      'vault.hashicorp.com/agent-inject-secret-DB.Creds': 'database/creds/app',
      'vault.hashicorp.com/agent-inject-file-DB.Creds': 'conf/db.env',
      'vault.hashicorp.com/agent-inject-perms-DB.Creds': '0400',
      'vault.hashicorp.com/agent-inject-command-DB.Creds': 'kill -HUP 1',
      'vault.hashicorp.com/error-on-missing-key-DB.Creds': 'true',
      'vault.hashicorp.com/agent-inject-template-only-template': '[[ with secret "secret/data/a" ]][[ .Data.data.x ]][[ end ]]{{ secret "kv/b" }}',
      'vault.hashicorp.com/agent-template-left-delim-only-template': '[[',
      'vault.hashicorp.com/agent-template-right-delim-only-template': ']]',
      'vault.hashicorp.com/agent-inject-secret-Cased': 'secret/data/cased',
      'vault.hashicorp.com/preserve-secret-case-Cased': 'true',
      'vault.hashicorp.com/agent-inject-secret-from-file': 'secret/data/f',
      'vault.hashicorp.com/agent-inject-template-file-from-file': '/vault/custom/f.tmpl',
      'vault.hashicorp.com/agent-inject-secret-elsewhere': 'secret/data/e',
      'vault.hashicorp.com/secret-volume-path-elsewhere': '/etc/app',
      'vault.hashicorp.com/agent-inject-token': 'true',
    }),
  )
  t.equal(r.decision, 'inject', r.reason)
  const config = agentConfigOf(r.pod)
  const byDest = Object.fromEntries(config.template.map((x: Obj) => [x.destination, x]))
  t.same(byDest['/vault/secrets/conf/db.env'], {
    destination: '/vault/secrets/conf/db.env',
    contents: '{{ with secret "database/creds/app" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}',
    left_delimiter: '{{',
    right_delimiter: '}}',
    command: 'kill -HUP 1',
    perms: '0400',
    error_on_missing_key: true,
  })
  t.same(byDest['/vault/secrets/only-template'].left_delimiter, '[[')
  t.ok(byDest['/vault/secrets/Cased'], 'preserve-secret-case keeps the case')
  t.same(byDest['/vault/secrets/from-file'], { destination: '/vault/secrets/from-file', left_delimiter: '{{', right_delimiter: '}}', source: '/vault/custom/f.tmpl' })
  t.ok(byDest['/etc/app/elsewhere'], 'custom volume path')
  t.ok(volumeNames(r.pod).includes('vault-secrets-custom-0'))
  t.same(mountsOf(r.pod, 'app').map((m) => m.mountPath), ['/var/run/secrets/kubernetes.io/serviceaccount', '/vault/secrets', '/etc/app'])
  t.same(config.auto_auth.sink[1], { type: 'file', config: { path: '/vault/secrets/token' } })
  const only = r.agent!.secrets.find((s) => s.name === 'only-template')!
  t.same(only.pathsRead, ['secret/data/a', 'kv/b'], 'paths read by a template')
  t.equal(only.path, '')

  const escape = inject(annotatedPod({ 'vault.hashicorp.com/agent-inject-secret-x': 'a', 'vault.hashicorp.com/agent-inject-file-x': '../../etc/passwd' }))
  t.match(escape, { decision: 'deny', reason: /agent-inject-file-x: "\.\.\/\.\.\/etc\/passwd" leaves the secrets volume/ })
  const dup = inject(annotatedPod({ 'vault.hashicorp.com/agent-inject-secret-a': 'x', 'vault.hashicorp.com/agent-inject-secret-b': 'y', 'vault.hashicorp.com/agent-inject-file-b': 'a' }))
  t.match(dup, { decision: 'deny', reason: /renders to \/vault\/secrets\/a/ })
  const orphan = inject(annotatedPod({ 'vault.hashicorp.com/agent-inject-perms-ghost': '0400', 'vault.hashicorp.com/agnet-inject': 'true' }))
  t.match(orphan.warnings, [/agnet-inject: unknown annotation/, /agent-inject-perms-ghost: no agent-inject-secret-ghost/])
})

t.test('init-first inserts the agent at the front without rewriting the user\'s init containers', async (t) => {
  const pod = annotatedPod({ 'vault.hashicorp.com/agent-init-first': 'true' }, { initContainers: [{ name: 'migrate', image: 'm', restartPolicy: 'Always', futureField: { x: 1 } }] })
  const r = inject(pod)
  t.same(r.pod.spec.initContainers.map((c: Obj) => c.name), ['vault-agent-init', 'migrate'])
  t.equal(r.pod.spec.initContainers[1].restartPolicy, 'Always', 'unknown and new fields survive')
  t.same(r.pod.spec.initContainers[1].futureField, { x: 1 })
  const initOps = r.patch.filter((op) => op.path.startsWith('/spec/initContainers'))
  t.same(initOps.map((op) => [op.op, op.path]), [['add', '/spec/initContainers/0'], ['add', '/spec/initContainers/1/volumeMounts/-']])
  t.notOk(r.patch.some((op) => op.op === 'replace' || op.op === 'remove'), 'no replace or remove')
  t.same(applyPatch(pod, r), r.pod)
  const plain = inject(annotatedPod({}, { initContainers: [{ name: 'migrate', image: 'm' }] }))
  t.same(plain.pod.spec.initContainers.map((c: Obj) => c.name), ['migrate', 'vault-agent-init'])
  t.ok(mountsOf(plain.pod, 'migrate').some((m) => m.name === 'vault-secrets'), 'existing init containers get the secrets')
})

t.test('pre-populate-only, pre-populate false, and the Job warning', async (t) => {
  const only = inject(annotatedPod({ 'vault.hashicorp.com/agent-pre-populate-only': 'true' }))
  t.same(only.pod.spec.containers.map((c: Obj) => c.name), ['app'])
  t.notOk(volumeNames(only.pod).includes('home-sidecar'))
  t.equal(only.agent!.injectionType, 'init_only')
  const noInit = inject(annotatedPod({ 'vault.hashicorp.com/agent-pre-populate': 'false' }))
  t.notOk(noInit.pod.spec.initContainers)
  t.equal(noInit.agent!.injectionType, 'sidecar_only')
  const job = annotatedPod({}, {})
  ;(job as Obj).metadata.ownerReferences = [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: 'u', controller: true }]
  t.match(inject(job).warnings, [/belongs to a Job/])
})

t.test('native sidecar: one agent, an init container that keeps running, gated on rendered files', async (t) => {
  const r = inject(annotatedPod({ 'vault-injector.dev/native-sidecar': 'true', 'vault.hashicorp.com/agent-inject-secret-db': 'secret/db', 'vault.hashicorp.com/agent-inject-secret-api': 'secret/api' }))
  t.same(r.pod.spec.containers.map((c: Obj) => c.name), ['app'])
  t.same(r.pod.spec.initContainers.map((c: Obj) => c.name), ['vault-agent'])
  const agent = r.pod.spec.initContainers[0]
  t.equal(agent.restartPolicy, 'Always')
  t.same(agent.startupProbe.exec.command, ['/bin/sh', '-c', "test -e '/vault/secrets/api' && test -e '/vault/secrets/db'"])
  t.equal(agentConfigOf(r.pod).exit_after_auth, false)
  t.notOk(volumeNames(r.pod).includes('home-init'))
  t.equal(r.agent!.mode, 'native-sidecar')
  const s = loadSettings({ AGENT_INJECT_NATIVE_SIDECAR: 'true' }, {})
  t.equal(inject(annotatedPod({}), 'team-a', s).agent!.mode, 'native-sidecar', 'injector-wide default')
})

t.test('service-account token: reuse the app mount, or project one for the agents only', async (t) => {
  const reuse = inject(annotatedPod({}))
  t.equal(reuse.agent!.tokenSource.kind, 'pod-mount')
  const noAutomount = inject(annotatedPod({}, { automountServiceAccountToken: false }))
  t.equal(noAutomount.decision, 'inject', 'vault-k8s refuses this pod; we project')
  t.same(noAutomount.pod.spec.volumes.find((v: Obj) => v.name === 'vault-agent-token'), {
    name: 'vault-agent-token',
    projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3600 } }] },
  })
  t.notOk(mountsOf(noAutomount.pod, 'app').some((m) => m.name === 'vault-agent-token'), 'never in the app')
  t.ok(mountsOf(noAutomount.pod, 'vault-agent').some((m) => m.name === 'vault-agent-token' && m.readOnly))
  t.equal(agentConfigOf(noAutomount.pod).auto_auth.method.config.token_path, '/var/run/secrets/vault.hashicorp.com/serviceaccount/token')

  const audience = inject(annotatedPod({ 'vault-injector.dev/token-audience': 'vault', 'vault-injector.dev/token-expiration-seconds': '900' }))
  t.same(audience.agent!.tokenSource, { kind: 'projected', volume: 'vault-agent-token', tokenPath: '/var/run/secrets/vault.hashicorp.com/serviceaccount/token', audience: 'vault', expirationSeconds: 900 })
  t.match(inject(annotatedPod({ 'vault-injector.dev/token-expiration-seconds': '60' })).reason, /600 or more/)

  const named = annotatedPod({ 'vault.hashicorp.com/agent-service-account-token-volume-name': 'vault-token' }, { volumes: [{ name: 'vault-token', projected: { sources: [{ serviceAccountToken: { path: 'jwt', audience: 'vault' } }] } }] })
  const namedResult = inject(named)
  t.equal(agentConfigOf(namedResult.pod).auto_auth.method.config.token_path, '/var/run/secrets/vault.hashicorp.com/serviceaccount/jwt')
  t.match(inject(annotatedPod({ 'vault.hashicorp.com/agent-service-account-token-volume-name': 'nope' })).reason, /"nope" names no volume/)
})

t.test('a template injected offline is left alone once the API server has admitted it', async (t) => {
  const template = { metadata: { annotations: { 'vault.hashicorp.com/agent-inject': 'true', 'vault.hashicorp.com/role': 'r' } }, spec: { containers: [{ name: 'a', image: 'b' }] } }
  const offline = injectPod({ pod: template, namespace: 'team-a', settings })
  t.equal(offline.agent!.tokenSource.kind, 'projected', 'a template has no token mount yet')
  const live = inject(admitted(offline.pod))
  t.match(live, { decision: 'skip', reason: 'already injected', patch: [] })
})

t.test('re-injection replaces the earlier agent instead of duplicating it', async (t) => {
  const first = inject(annotatedPod({ 'vault.hashicorp.com/agent-inject-secret-a': 'secret/a' })).pod
  first.metadata.annotations['vault.hashicorp.com/agent-inject-status'] = 'update'
  first.metadata.annotations['vault.hashicorp.com/agent-inject-secret-b'] = 'secret/b'
  const again = inject(first)
  t.equal(again.decision, 'inject')
  t.same(again.pod.spec.containers.map((c: Obj) => c.name), ['app', 'vault-agent'])
  t.same(again.pod.spec.initContainers.map((c: Obj) => c.name), ['vault-agent-init'])
  t.same(volumeNames(again.pod).filter((n) => n === 'vault-secrets'), ['vault-secrets'])
  t.same(mountsOf(again.pod, 'app').filter((m) => m.name === 'vault-secrets').length, 1)
  t.same(agentConfigOf(again.pod).template.map((x: Obj) => x.destination), ['/vault/secrets/a', '/vault/secrets/b'])
  t.same(applyPatch(first, again), again.pod)

  // Reinvocation: another webhook added a container after us.
  const injected = inject(annotatedPod({})).pod
  injected.spec.containers.push({ name: 'istio-proxy', image: 'proxy', volumeMounts: [{ name: 'istio-data', mountPath: '/var/lib/istio' }] })
  const reinvoked = inject(injected)
  t.match(reinvoked, { decision: 'inject', reason: 'already injected; added the secrets volume to istio-proxy' }, 'the new container needs the secrets too')
  t.same(reinvoked.patch, [{ op: 'add', path: '/spec/containers/2/volumeMounts/-', value: { name: 'vault-secrets', mountPath: '/vault/secrets' } }])
  t.ok(mountsOf(reinvoked.pod, 'istio-proxy').some((m) => m.name === 'vault-secrets'))
  t.same(inject(reinvoked.pod).patch, [], 'and then it is stable')

  const clash = inject(annotatedPod({}, { volumes: [{ name: 'vault-secrets', emptyDir: {} }] }))
  t.match(clash, { decision: 'deny', reason: /already has volume vault-secrets/ })
})

t.test('options: configmap, TLS, extra secret, cache, revoke, security context, json patch', async (t) => {
  const cm = inject(annotatedPod({ 'vault.hashicorp.com/agent-configmap': 'agent-config', 'vault.hashicorp.com/role': '', 'vault.hashicorp.com/tls-skip-verify': 'true' }))
  t.equal(cm.decision, 'inject', cm.reason)
  const cmInit = containerNamed(cm.pod, 'vault-agent-init')!
  t.same(cmInit.args, ['touch /home/vault/.vault-token && vault agent -config=/vault/configs/config-init.hcl'])
  t.same(cmInit.env.filter((e: Obj) => e.name.startsWith('VAULT_')).map((e: Obj) => e.name), ['VAULT_LOG_LEVEL', 'VAULT_LOG_FORMAT', 'VAULT_ADDR', 'VAULT_SKIP_VERIFY'])
  t.ok(volumeNames(cm.pod).includes('vault-config'))

  const tls = inject(annotatedPod({ 'vault.hashicorp.com/tls-secret': 'vault-ca', 'vault.hashicorp.com/ca-cert': '/vault/tls/ca.crt', 'vault.hashicorp.com/agent-extra-secret': 'extra', 'vault.hashicorp.com/agent-revoke-on-shutdown': 'true', 'vault.hashicorp.com/agent-revoke-grace': '7' }))
  t.same(mountsOf(tls.pod, 'vault-agent').slice(3).map((m) => [m.name, m.mountPath, m.readOnly]), [['extra-secrets', '/vault/custom', true], ['vault-tls-secrets', '/vault/tls', true]])
  t.same(containerNamed(tls.pod, 'vault-agent')!.lifecycle.preStop.exec.command, ['/bin/sh', '-c', '/bin/sleep 7 && /bin/vault token revoke -address=https://vault.vault.svc:8200 -ca-cert=/vault/tls/ca.crt -self'])
  t.notOk(mountsOf(tls.pod, 'app').some((m) => m.name === 'vault-tls-secrets'), 'agents only')

  const cache = inject(annotatedPod({ 'vault.hashicorp.com/agent-cache-enable': 'true', 'vault.hashicorp.com/agent-cache-listener-port': '8300' }))
  const sideConfig = agentConfigOf(cache.pod)
  t.same(sideConfig.listener, [{ type: 'tcp', address: '127.0.0.1:8300', tls_disable: true }])
  t.same(sideConfig.cache, { use_auto_auth_token: 'true', persist: { type: 'kubernetes', path: '/vault/agent-cache' } })
  t.ok(agentConfigOf(cache.pod, 'vault-agent-init').cache.persist, 'persistent cache in both agents')
  t.ok(volumeNames(cache.pod).includes('vault-agent-cache'))

  const root = inject(annotatedPod({ 'vault.hashicorp.com/agent-run-as-user': '0' }))
  t.equal(containerNamed(root.pod, 'vault-agent')!.securityContext.runAsNonRoot, false)
  const noSc = inject(annotatedPod({ 'vault.hashicorp.com/agent-set-security-context': 'false' }))
  t.notOk(containerNamed(noSc.pod, 'vault-agent')!.securityContext)
  const same = inject(annotatedPod({ 'vault.hashicorp.com/agent-run-as-same-user': 'true' }))
  t.match(same.reason, /first container has no securityContext.runAsUser/)

  const patched = inject(annotatedPod({ 'vault.hashicorp.com/agent-json-patch': '[{"op":"replace","path":"/resources/limits/cpu","value":"2"}]' }))
  t.equal(containerNamed(patched.pod, 'vault-agent')!.resources.limits.cpu, '2')
  t.equal(containerNamed(patched.pod, 'vault-agent-init')!.resources.limits.cpu, '500m')
  const badPatch = inject(annotatedPod({ 'vault.hashicorp.com/agent-init-json-patch': '[{"op":"remove","path":"/nope"}]' }))
  t.match(badPatch, { decision: 'deny', reason: /agent-init-json-patch: cannot be applied to the vault-agent-init container/ })

  const telemetry = inject(annotatedPod({ 'vault.hashicorp.com/agent-telemetry-prometheus_retention_time': '30s', 'vault.hashicorp.com/agent-telemetry-disable_hostname': 'true', 'vault.hashicorp.com/agent-telemetry-nope': '1' }))
  t.same(agentConfigOf(telemetry.pod).telemetry, { disable_hostname: true, prometheus_retention_time: '30s' })
  t.match(telemetry.warnings, [/agent-telemetry-nope: not a Vault Agent telemetry setting/])

  const auth = inject(annotatedPod({ 'vault.hashicorp.com/auth-config-token-path': '/custom/token', 'vault.hashicorp.com/namespace': 'team', 'vault.hashicorp.com/auth-min-backoff': '1s', 'vault.hashicorp.com/agent-auto-auth-exit-on-err': 'true' }))
  t.same(agentConfigOf(auth.pod).auto_auth.method, { type: 'kubernetes', mount_path: 'auth/kubernetes', namespace: 'team', min_backoff: '1s', exit_on_err: true, config: { role: 'app', token_path: '/custom/token' } })

  const shared = inject(annotatedPod({ 'vault.hashicorp.com/agent-share-process-namespace': 'true' }))
  t.equal(shared.pod.spec.shareProcessNamespace, true)
  const containersOnly = inject(annotatedPod({ 'vault.hashicorp.com/agent-inject-containers': 'other' }, { containers: [{ name: 'app', image: 'a' }, { name: 'other', image: 'o' }] }))
  t.notOk(mountsOf(containersOnly.pod, 'app').some((m) => m.name === 'vault-secrets'))
  t.ok(mountsOf(containersOnly.pod, 'other').some((m) => m.name === 'vault-secrets'))
})

t.test('the input pod is never modified', async (t) => {
  const pod = fixture('pod-web.json')
  const before = JSON.stringify(pod)
  inject(pod, 'shop')
  t.equal(JSON.stringify(pod), before)
})

// The persistent cache reads a service-account token from the default path
// unless told; the agents' own projected token is elsewhere.
t.test('persistent cache: the token file is named where the agents\' token is not at the default path', async (t) => {
  const cache = { 'vault.hashicorp.com/agent-cache-enable': 'true' }
  const usual = inject(annotatedPod(cache))
  for (const agent of ['vault-agent-init', 'vault-agent']) {
    const persist = agentConfigOf(usual.pod, agent).cache.persist
    t.same(persist, { type: 'kubernetes', path: '/vault/agent-cache' }, `${agent}: vault-k8s's persist block, unchanged, with the default token mount`)
  }
  const projected = inject(annotatedPod({ ...cache, 'vault-injector.dev/token-audience': 'vault' }, { automountServiceAccountToken: false }))
  t.equal(projected.decision, 'inject', projected.reason)
  for (const agent of ['vault-agent-init', 'vault-agent']) {
    const config = agentConfigOf(projected.pod, agent)
    t.equal(config.cache.persist.service_account_token_file, config.auto_auth.method.config.token_path, `${agent}: the cache reads the agents' projected token`)
    t.equal(config.cache.persist.service_account_token_file, '/var/run/secrets/vault.hashicorp.com/serviceaccount/token')
  }
})
