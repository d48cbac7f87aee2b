// The shipped manifests and image: they parse, kustomize builds both variants,
// the webhook configuration is exactly what `register` builds, every name one
// object uses to find another matches, RBAC grants only what the code calls,
// and the Deployment and Dockerfile keep their security promises.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import picomatch from 'picomatch'
import { parseAllDocuments } from 'yaml'
import { webhookOptionsFrom } from '../../src/cli/register.ts'
import { SHUTDOWN_LIMIT_MS } from '../../src/cli/serve.ts'
import { defaultSettings } from '../../src/settings.ts'
import { defaultHosts } from '../../src/kube/auto-tls.ts'
import { LEASE_NAME, SECRET_NAME } from '../../src/kube/names.ts'
import { buildWebhookConfiguration, DEFAULT_WEBHOOK_OPTIONS, MATCH_CONDITION_EXPRESSION } from '../../src/kube/webhook-config.ts'

type Obj = Record<string, any>
const root = new URL('../../', import.meta.url)
const base = new URL('manifests/base/', root)
const parseAll = (text: string): Obj[] => parseAllDocuments(text).map((d) => d.toJS() as Obj).filter(Boolean)
const load = (file: string, dir = base): Obj[] => parseAll(readFileSync(new URL(file, dir), 'utf8'))
const all = (): Obj[] => load('kustomization.yaml')[0]!.resources.flatMap((f: string) => load(f))
const find = (objects: Obj[], kind: string, name = 'vault-injector'): Obj => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name)
  if (!found) throw new Error(`no ${kind} ${name}`)
  return found
}
const envOf = (deployment: Obj): Record<string, Obj> => Object.fromEntries(deployment.spec.template.spec.containers[0].env.map((e: Obj) => [e.name, e]))
function sourceFiles(dir: URL): URL[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(new URL(`${e.name}/`, dir)) : e.name.endsWith('.ts') ? [new URL(e.name, dir)] : []))
}
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string }

t.test('every file in the base kustomization exists and parses; manifests/ is the base', async (t) => {
  const kustomization = load('kustomization.yaml')[0]!
  for (const file of kustomization.resources) t.ok(load(file).length > 0, file)
  const files = readdirSync(base).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  t.same([...files].sort(), [...kustomization.resources].sort(), 'no file left out')
  t.same(load('kustomization.yaml', new URL('manifests/', root))[0]!.resources, ['base'])
  t.same(load('kustomization.yaml', new URL('manifests/cert-manager/', root))[0]!.resources, ['../base', 'certificates.yaml'])
})

t.test('the shipped MutatingWebhookConfiguration is what register builds', async (t) => {
  const shipped = load('mutating-webhook.yaml')[0]!
  t.same(shipped, JSON.parse(JSON.stringify(buildWebhookConfiguration(DEFAULT_WEBHOOK_OPTIONS))))
  const defaults = webhookOptionsFrom({ name: 'vault-injector', namespace: 'vault-injector', service: 'vault-injector', servicePort: '443', path: '/mutate', failurePolicy: 'Ignore', timeoutSeconds: '5', matchConditions: true })
  t.same(defaults, DEFAULT_WEBHOOK_OPTIONS, "register's defaults are the shipped ones")
  const hook = shipped.webhooks[0]
  t.equal(hook.sideEffects, 'None')
  t.same(hook.admissionReviewVersions, ['v1', 'v1beta1'])
  t.same(hook.rules, [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }])
  t.equal(hook.reinvocationPolicy, 'IfNeeded')
  t.equal(hook.matchPolicy, 'Equivalent')
  t.equal(hook.failurePolicy, 'Ignore')
  t.ok(hook.timeoutSeconds <= 10, 'a small timeout')
  t.same(hook.namespaceSelector.matchExpressions, [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public'] }], 'no namespace of ours named: the base installs into any namespace')
  t.equal(hook.matchConditions[0].expression, MATCH_CONDITION_EXPRESSION)
  t.notOk(hook.clientConfig.caBundle, 'no caBundle: auto-TLS or cert-manager sets it')
})

t.test('names that tie the objects together all match', async (t) => {
  const objects = all()
  const ns = find(objects, 'Namespace').metadata.name
  for (const o of objects) if (!['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration'].includes(o.kind)) t.equal(o.metadata.namespace, ns, `${o.kind} in ${ns}`)
  const deployment = find(objects, 'Deployment')
  const pod = deployment.spec.template
  const labels = pod.metadata.labels
  const service = find(objects, 'Service')
  const webhook = find(objects, 'MutatingWebhookConfiguration')
  const hook = webhook.webhooks[0]
  const env = envOf(deployment)

  const selects = (selector: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v)
  t.ok(selects(deployment.spec.selector.matchLabels), 'Deployment selector matches its pods')
  t.ok(selects(service.spec.selector), 'Service selects the pods')
  t.ok(selects(find(objects, 'PodDisruptionBudget').spec.selector.matchLabels), 'PDB selects the pods')
  t.ok(selects(pod.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.labelSelector.matchLabels), 'anti-affinity is between these pods')
  const port = pod.spec.containers[0].ports.find((p: Obj) => p.name === service.spec.ports[0].targetPort)
  t.equal(port?.containerPort, 8080, 'Service 443 → the container port 8080 by name')
  t.equal(env.AGENT_INJECT_LISTEN?.value, ':8080')
  t.same(hook.clientConfig.service, { name: service.metadata.name, namespace: ns, path: '/mutate', port: service.spec.ports[0].port })

  // Its own pods are never sent to it (no deadlock when it restarts), by label, in any namespace.
  const own = hook.objectSelector.matchExpressions[0]
  t.equal(own.operator, 'NotIn')
  t.ok(own.values.includes(labels[own.key]), 'own pods excluded by label')

  t.equal(env.AGENT_INJECT_TLS_AUTO?.value, webhook.metadata.name, 'auto-TLS patches the shipped configuration')
  t.equal(env.AGENT_INJECT_TLS_AUTO_HOSTS, undefined, 'certificate names come from NAMESPACE at run time (the Service names there), not from a namespace written here')
  t.same(defaultHosts(ns, service.metadata.name), ['vault-injector', `vault-injector.${ns}`, `vault-injector.${ns}.svc`, `vault-injector.${ns}.svc.cluster.local`])
  t.equal(env.AGENT_INJECT_USE_LEADER_ELECTOR?.value, 'true')
  t.equal(env.NAMESPACE?.valueFrom.fieldRef.fieldPath, 'metadata.namespace')
  t.equal(env.POD_NAME?.valueFrom.fieldRef.fieldPath, 'metadata.name')
  t.ok(env.AGENT_INJECT_VAULT_ADDR?.value)

  const sa = find(objects, 'ServiceAccount').metadata.name
  t.equal(pod.spec.serviceAccountName, sa)
  for (const kind of ['ClusterRoleBinding', 'RoleBinding']) {
    const binding = find(objects, kind)
    t.same(binding.subjects, [{ kind: 'ServiceAccount', name: sa, namespace: ns }], `${kind} binds the ServiceAccount`)
    t.equal(binding.roleRef.name, find(objects, binding.roleRef.kind).metadata.name)
  }
  t.equal(pod.spec.containers[0].image, `vault-injector:${pkg.version}`, 'image tag is the package version')
})

t.test('the Deployment: 2 replicas, probes, non-root, read-only, no capabilities, seccomp, resources', async (t) => {
  const deployment = find(all(), 'Deployment')
  const pod = deployment.spec.template.spec
  const container = pod.containers[0]
  t.equal(deployment.spec.replicas, 2)
  t.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0, 'a rollout never drops below 2')
  t.equal(pod.securityContext.runAsNonRoot, true)
  t.ok(Number.isInteger(pod.securityContext.runAsUser) && pod.securityContext.runAsUser > 0)
  t.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault')
  t.equal(container.securityContext.readOnlyRootFilesystem, true)
  t.equal(container.securityContext.allowPrivilegeEscalation, false)
  t.same(container.securityContext.capabilities.drop, ['ALL'])
  t.ok(container.resources.requests.cpu && container.resources.requests.memory && container.resources.limits.memory)
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) t.equal(container[probe].httpGet.scheme, 'HTTPS', probe)
  t.equal(container.readinessProbe.httpGet.path, '/health/ready')
  t.equal(container.startupProbe.httpGet.path, '/health/ready')
  t.ok(pod.terminationGracePeriodSeconds >= 30, 'time to finish reviews in flight')
})

t.test('shutdown: a preStop pause, then the drain, all inside the grace period', async (t) => {
  const pod = find(all(), 'Deployment').spec.template.spec
  const preStopS = pod.containers[0].lifecycle.preStop.sleep.seconds
  t.ok(preStopS >= 3, `the preStop pause (${preStopS} s) lets endpoints drop the pod before SIGTERM`)
  t.ok(preStopS * 1000 + SHUTDOWN_LIMIT_MS < pod.terminationGracePeriodSeconds * 1000, `preStop + the server's own exit limit (${SHUTDOWN_LIMIT_MS} ms) < terminationGracePeriodSeconds`)
  t.ok(defaultSettings().drainSeconds * 1000 < SHUTDOWN_LIMIT_MS, 'the drain window is inside the exit limit')
})

t.test('NetworkPolicy: the webhook port in; the API server and DNS out, nothing else', async (t) => {
  const objects = all()
  const policy = find(objects, 'NetworkPolicy')
  const labels = find(objects, 'Deployment').spec.template.metadata.labels
  t.ok(Object.entries(policy.spec.podSelector.matchLabels).every(([k, v]) => labels[k] === v), 'selects the injector pods')
  t.same(policy.spec.policyTypes, ['Ingress', 'Egress'])
  t.same(policy.spec.ingress, [{ ports: [{ port: 'https', protocol: 'TCP' }] }], 'only the named webhook port')
  const egressPorts = policy.spec.egress.flatMap((rule: Obj) => rule.ports.map((p: Obj) => `${p.protocol}/${p.port}`))
  t.same(egressPorts.sort(), ['TCP/443', 'TCP/53', 'TCP/6443', 'UDP/53'])
  const dns = policy.spec.egress.find((rule: Obj) => rule.ports.some((p: Obj) => p.port === 53))
  t.same(dns.to, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }], 'DNS only to kube-system')
})

t.test('RBAC grants only what the code calls, by name wherever RBAC allows', async (t) => {
  const objects = all()
  t.same(find(objects, 'ClusterRole').rules, [
    // auto-tls.ts webhookStore: read, list+watch by metadata.name, JSON Patch.
    { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['vault-injector'], verbs: ['get', 'list', 'watch', 'patch'] },
    // namespaces.ts: the namespace-label informer.
    { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
  ])
  t.same(find(objects, 'Role').rules, [
    { apiGroups: [''], resources: ['secrets'], resourceNames: [SECRET_NAME], verbs: ['get', 'update'] },
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [LEASE_NAME], verbs: ['get', 'update'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
  ])
  const text = readFileSync(new URL('rbac.yaml', base), 'utf8')
  const rules = text.split('\n').filter((l) => l.trim().startsWith('- apiGroups'))
  const commented = text.split('\n').filter((l, i, lines) => l.trim().startsWith('- apiGroups') && lines[i - 1]!.trim().startsWith('#'))
  t.equal(commented.length, rules.length, 'every rule has its reason written above it')
})

t.test('the cert-manager variant: certificates, the cainjector annotation, TLS files, and less RBAC', async (t) => {
  const dir = new URL('manifests/cert-manager/', root)
  const k = load('kustomization.yaml', dir)[0]!
  const certs = load('certificates.yaml', dir)
  const serving = find(certs, 'Certificate', 'vault-injector-serving')
  const ca = find(certs, 'Certificate', 'vault-injector-ca')
  // The namespace is filled in by kustomize from the Service's (any namespace, as the base).
  const inNamespace = (names: string[], namespace: string): string[] => names.map((n) => n.replace('$(VAULT_INJECTOR_NAMESPACE)', namespace))
  t.same(inNamespace(serving.spec.dnsNames, 'vault'), defaultHosts('vault'), 'serving certificate names are the Service names, in its namespace')
  t.same(k.vars, [{ name: 'VAULT_INJECTOR_NAMESPACE', objref: { apiVersion: 'v1', kind: 'Service', name: 'vault-injector' }, fieldref: { fieldPath: 'metadata.namespace' } }], 'the namespace is the Service\'s')
  t.same(load(k.configurations[0], dir)[0]!.varReference, [{ group: 'cert-manager.io', kind: 'Certificate', path: 'spec/dnsNames' }], 'kustomize fills it in the DNS names')
  t.equal(find(certs, 'Issuer', serving.spec.issuerRef.name).spec.ca.secretName, ca.spec.secretName, 'the CA Issuer signs with the CA Certificate')
  t.ok(find(certs, 'Issuer', ca.spec.issuerRef.name).spec.selfSigned)
  t.equal(ca.spec.privateKey.rotationPolicy, 'Never', 'the CA keeps its key on renewal')
  const patches = JSON.stringify(k.patches)
  t.match(patches, `cert-manager.io/inject-ca-from: $(VAULT_INJECTOR_NAMESPACE)/${serving.metadata.name}`)
  t.match(patches, `secretName: ${serving.spec.secretName}`)
})

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' })
t.test('kustomize builds both variants (kubectl kustomize)', { skip: kubectl.status === 0 ? false : 'kubectl not installed' }, async (t) => {
  const build = (dir: string): Obj[] => {
    const r = spawnSync('kubectl', ['kustomize', new URL(dir, root).pathname], { encoding: 'utf8' })
    t.equal(r.status, 0, r.stderr)
    return parseAll(r.stdout)
  }
  const autoTls = build('manifests/')
  t.same(autoTls.map((o) => o.kind).sort(), all().map((o) => o.kind).sort(), 'manifests/ is the base')
  const certManager = build('manifests/cert-manager/')
  const env = envOf(find(certManager, 'Deployment'))
  t.notOk(env.AGENT_INJECT_TLS_AUTO || env.AGENT_INJECT_TLS_AUTO_HOSTS || env.AGENT_INJECT_USE_LEADER_ELECTOR, 'no auto-TLS settings left')
  const pod = find(certManager, 'Deployment').spec.template.spec
  const mount = pod.containers[0].volumeMounts.find((m: Obj) => m.name === 'tls')
  t.equal(env.AGENT_INJECT_TLS_CERT_FILE?.value, `${mount.mountPath}/tls.crt`)
  t.equal(env.AGENT_INJECT_TLS_KEY_FILE?.value, `${mount.mountPath}/tls.key`)
  const volume = pod.volumes.find((v: Obj) => v.name === 'tls')
  const serving = find(certManager, 'Certificate', 'vault-injector-serving')
  t.equal(volume.secret.secretName, serving.spec.secretName, 'mounts the Secret cert-manager writes')
  const [ns, certName] = find(certManager, 'MutatingWebhookConfiguration').metadata.annotations['cert-manager.io/inject-ca-from'].split('/')
  t.equal(`${ns}/${certName}`, `${serving.metadata.namespace}/${serving.metadata.name}`, 'cainjector reads a Certificate that exists')
  t.notOk(certManager.some((o) => o.kind === 'Role' || o.kind === 'RoleBinding'), 'no Secret or Lease access')
  t.same(find(certManager, 'ClusterRole').rules, [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] }], 'only the namespace-label read stays')
})

t.test('the cert-manager variant in any namespace: an overlay with namespace: vault names vault everywhere', { skip: kubectl.status === 0 ? false : 'kubectl not installed' }, async (t) => {
  const overlay = mkdtempSync(join(tmpdir(), 'cert-manager-overlay-'))
  t.teardown(() => rmSync(overlay, { recursive: true, force: true }))
  writeFileSync(join(overlay, 'kustomization.yaml'), `namespace: vault\nresources:\n  - ${relative(overlay, new URL('manifests/cert-manager/', root).pathname)}\n`)
  const r = spawnSync('kubectl', ['kustomize', overlay], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  const objects = parseAll(r.stdout)
  t.same(find(objects, 'Certificate', 'vault-injector-serving').spec.dnsNames, defaultHosts('vault'), 'the serving certificate names the Service in vault')
  t.equal(find(objects, 'MutatingWebhookConfiguration').metadata.annotations['cert-manager.io/inject-ca-from'], 'vault/vault-injector-serving', 'cainjector reads the Certificate in vault')
  t.same(find(objects, 'MutatingWebhookConfiguration').webhooks.map((w: Obj) => w.clientConfig.service.namespace), ['vault'])
  t.notMatch(r.stdout, /vault-injector\.vault-injector|namespace: vault-injector|\$\(/, 'no other namespace and no unfilled variable left')
})

t.test('Dockerfile: Node 24, bases pinned by digest, npm only in the build stages, production dependencies only, what runs is copied, numeric non-root user as in the Deployment', async (t) => {
  const text = readFileSync(new URL('Dockerfile', root), 'utf8')
  const args = Object.fromEntries([...text.matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]))
  t.match(args.NODE_IMAGE, /^docker\.io\/library\/node:24-bookworm-slim@sha256:[0-9a-f]{64}$/, 'Node 24 base pinned by digest')
  t.match(args.RUNTIME_IMAGE, /^docker\.io\/library\/debian:bookworm-slim@sha256:[0-9a-f]{64}$/, 'runtime base: the same Debian release, pinned by digest')
  const stages = text.split(/^FROM /m).slice(1)
  t.same(stages.map((s) => s.split(/\s/)[0]), ['${NODE_IMAGE}', '${NODE_IMAGE}', '${RUNTIME_IMAGE}'], 'two build stages on Node, the last on plain Debian')
  const runtime = stages.at(-1)!
  t.notMatch(runtime, /^RUN /m, 'the runtime stage runs nothing (no package manager, no shell step)')
  t.match(runtime, /^COPY --from=build \/usr\/local\/bin\/node \/usr\/local\/bin\/node$/m, 'only the node binary comes from the Node image: npm stays behind')
  for (const label of ['title', 'description', 'version', 'revision', 'licenses', 'base.name']) t.match(runtime, new RegExp(`org\\.opencontainers\\.image\\.${label.replace('.', '\\.')}=`), `OCI label ${label}`)
  const pkgVersion = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string }).version
  t.match(runtime, new RegExp(`^ARG VERSION=${pkgVersion.replaceAll('.', '\\.')}$`, 'm'), 'the default version label is package.json\'s')
  t.match(text, /npm ci --omit=dev/)
  for (const path of ['src', 'dist', 'schemas', 'package.json']) t.match(text, new RegExp(`^COPY (--from=\\S+ )?(/app/)?${path}\\b`, "m"), `copies ${path}`)
  // Every file or directory outside src/ that the sources read must be in the
  // image (certs/ is where the local-only embedded CA is written, not read).
  const copied = [...text.matchAll(/^COPY (?:--from=\S+ )?(\S+)/gm)].map((m) => m[1]!.replace(/\/$/, ''))
  for (const file of sourceFiles(new URL('src/', root))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/new URL\('([^']+)', import\.meta\.url\)|^import '(\.[^']+)'/gm)) {
      const target = m[1] ?? m[2]!
      const path = new URL(target, file).pathname.slice(root.pathname.length)
      const top = path.split('/')[0]!
      if (top !== 'src' && top !== 'certs') t.ok(copied.includes(top) || copied.includes(path), `${file.pathname.slice(root.pathname.length)} reads ${target}: ${path} is copied`)
    }
  }
  const user = /^USER (\d+):(\d+)$/m.exec(text)
  t.ok(user, 'numeric USER uid:gid')
  const pod = find(all(), 'Deployment').spec.template.spec
  t.equal(pod.securityContext.runAsUser, Number(user![1]))
  t.equal(pod.securityContext.runAsGroup, Number(user![2]))
  t.match(text, /^RUN node --no-warnings scripts\/build.ts/m, 'the types are stripped at build time')
  const entry = /^ENTRYPOINT \[(.+)\]/m.exec(text)![1]!.split(', ').map((x) => JSON.parse(x) as string)
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { scripts: Record<string, string> }
  t.same([...entry, 'serve'], pkg.scripts.start!.split(' '), 'the image runs what npm start runs, Node flags included')
  const ignored = readFileSync(new URL('.dockerignore', root), 'utf8').split('\n')
  for (const path of ['node_modules', '.git', 'certs', 'test']) t.ok(ignored.includes(path), `.dockerignore: ${path}`)
})

// .dockerignore as Docker reads it: each line a glob from the context root,
// matching the path or a parent directory; later lines win; `!` re-includes.
function dockerIgnored(patterns: string[], path: string): boolean {
  let excluded = false
  const parts = path.split('/')
  for (const line of patterns) {
    const text = line.trim()
    if (!text || text.startsWith('#')) continue
    const negate = text.startsWith('!')
    const isMatch = picomatch(negate ? text.slice(1) : text, { dot: true })
    if (parts.some((_, i) => isMatch(parts.slice(0, i + 1).join('/')))) excluded = !negate
  }
  return excluded
}

t.test('.dockerignore keeps out of the build context nothing the Dockerfile copies from it', async (t) => {
  const patterns = readFileSync(new URL('.dockerignore', root), 'utf8').split('\n')
  const sources = [...readFileSync(new URL('Dockerfile', root), 'utf8').matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/))
  t.ok(sources.length >= 4, `COPY sources: ${sources}`)
  for (const source of sources) {
    const path = source.replace(/\/$/, '')
    const files = statSync(new URL(path, root)).isDirectory() ? readdirSync(new URL(path, root), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => `${e.parentPath}/${e.name}`.slice(root.pathname.length)) : [path]
    t.ok(files.length > 0 && files.every((f) => !dockerIgnored(patterns, f)), `${source} reaches the build`)
  }
  t.ok(dockerIgnored(patterns, 'scripts/gen-annotation-docs.ts') && dockerIgnored(patterns, 'node_modules/x/y.js') && dockerIgnored(patterns, 'README.md'), 'the matcher does exclude')
})
