// charts/vault-injector with the real Helm (built by build.sh): `helm lint
// --strict` and `helm template` for every values set in the chart's ci/
// folder, each rendering validated two ways against the Kubernetes the e2e
// runs: kubeconform -strict with schemas made from this API server's OpenAPI
// (openapi-schemas.ts), and the API server itself (dry run, strict field
// validation). cert-manager's and the Prometheus Operator's kinds have no
// schema here (their CRDs are not installed): both checks skip them, by name.
// Then `helm install` into the e2e API server, the Deployment run as pods
// would run it (workloads.ts), and a pod injected through the chart's webhook;
// and `helm upgrade --set injector.replicas=1`: no leader election, no Role,
// the certificate in memory, a pod injected again.
import t from 'tap'
import { AppsV1Api, CoordinationV1Api, CoreV1Api, RbacAuthorizationV1Api, type KubernetesObject } from '@kubernetes/client-node'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parseAllDocuments, parse } from 'yaml'
import { RESTARTER_READY } from '../../src/kube/csi-restart.ts'
import { parsePolicy } from '../../src/policy/load.ts'
import { BIN, dryRunCreate, installFixtureCrd, ROOT, startControlPlane, waitFor, type ControlPlane } from './harness.ts'
import { writeKubeconformSchemas } from './openapi-schemas.ts'
import { canRunPods, createUntilInjected, runDeployment, type Pod } from './workloads.ts'

type Obj = Record<string, any>
const CHART = join(ROOT, 'charts/vault-injector')
const HELM = join(BIN, 'helm')
const KUBECONFORM = join(BIN, 'kubeconform')
const KUSTOMIZE = join(BIN, 'kustomize')
const NS = 'vault'
const APP_NS = 'shop'
// Kinds whose CRDs are not in the e2e API server.
const NO_SCHEMA = ['Certificate', 'Issuer', 'ServiceMonitor']
const VALUES = ['', ...readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('.yaml')).map((f) => join(CHART, 'ci', f))]

// Missing programs fail the run (the chart is checked in CI), said once below.
const missing = [HELM, KUBECONFORM, KUSTOMIZE].filter((p) => !existsSync(p))
const skip = canRunPods() ?? (missing.length > 0 ? `not built: ${missing.join(', ')}` : undefined)
let cp: ControlPlane
let pods: Pod[] = []

function run(command: string, args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(command, args, { encoding: 'utf8', input, env: { ...process.env, HOME: cp.dir, HELM_CACHE_HOME: join(cp.dir, 'helm-cache'), HELM_CONFIG_HOME: join(cp.dir, 'helm-config'), HELM_DATA_HOME: join(cp.dir, 'helm-data') } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const helm = (...args: string[]): ReturnType<typeof run> => run(HELM, [...args, '--kubeconfig', cp.kubeconfigPath])
const render = (values: string, ...sets: string[]): string => {
  const r = run(HELM, ['template', 'vault-injector', CHART, '--namespace', NS, ...(values ? ['-f', values] : []), ...sets.flatMap((v) => ['--set', v])])
  if (r.status !== 0) throw new Error(`helm template ${values}: ${r.stderr}`)
  return r.stdout
}
const objectsOf = (text: string): Obj[] => parseAllDocuments(text).map((d) => d.toJS() as Obj).filter((o) => o?.kind)
const label = (values: string): string => (values ? values.slice(CHART.length + 1) : 'default values')

t.before(async () => {
  if (skip) return
  cp = await startControlPlane()
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  for (const name of [NS, APP_NS]) await core.createNamespace({ body: { metadata: { name } } })
  await core.createNamespacedServiceAccount({ namespace: APP_NS, body: { metadata: { name: 'default' } } })
})
t.teardown(async () => {
  for (const p of pods) await p.stop()
  await cp?.stop()
})

t.test('Helm, kubeconform and kustomize are built (test/e2e/build.sh)', async (t) => {
  t.same(missing, [], 'every program the chart tests need is in the e2e bin folder')
})

t.test('helm lint --strict passes with every values set', { skip }, async (t) => {
  for (const values of VALUES) {
    const r = run(HELM, ['lint', '--strict', CHART, ...(values ? ['-f', values] : [])])
    t.equal(r.status, 0, `${label(values)}: ${r.status === 0 ? 'lint passes' : r.stdout + r.stderr}`)
  }
})

t.test('every rendering is valid for this Kubernetes: kubeconform -strict (schemas from its OpenAPI) and the API server\'s strict dry run', { skip }, async (t) => {
  const renders = VALUES.map((values) => ({ values, text: render(values) }))
  const kinds = new Set(renders.flatMap((r) => objectsOf(r.text).map((o) => o.kind as string)))
  const { location, count } = await writeKubeconformSchemas(cp, join(cp.dir, 'schemas'), kinds)
  t.ok(count >= kinds.size - NO_SCHEMA.length, `${count} schemas written for ${[...kinds].sort().join(', ')}`)
  const kubeconform = (text: string): ReturnType<typeof run> => run(KUBECONFORM, ['-strict', '-summary', '-schema-location', location, '-skip', NO_SCHEMA.join(','), '-'], text)

  for (const { values, text } of renders) {
    const checked = kubeconform(text)
    t.equal(checked.status, 0, `${label(values)}: kubeconform ${checked.status === 0 ? checked.stdout.trim() : checked.stdout + checked.stderr}`)
    for (const object of objectsOf(text)) {
      if (NO_SCHEMA.includes(object.kind)) continue
      const answer = await dryRunCreate(cp, object as KubernetesObject)
      t.ok(answer.status === 201 && answer.warnings.length === 0, `${label(values)}: ${object.kind} ${object.metadata.name} ${answer.status === 201 ? 'accepted' : answer.text}${answer.warnings.join('; ')}`)
    }
  }

  // Both checks can fail: a misspelt field in the Deployment is refused by each.
  const broken = renders[0]!.text.replace('  replicas: 2\n', '  replicas: 2\n  replicaz: 2\n')
  t.not(kubeconform(broken).status, 0, 'kubeconform refuses an unknown field')
  const deployment = objectsOf(broken).find((o) => o.kind === 'Deployment')!
  t.equal((await dryRunCreate(cp, deployment as KubernetesObject)).status, 400, 'the API server refuses it too')

  // The policy values render into a file the injector loads.
  const policy = objectsOf(renders.find((r) => r.values.endsWith('everything-values.yaml'))!.text).find((o) => o.kind === 'ConfigMap')!
  t.doesNotThrow(() => parsePolicy(policy.data['policy.yaml'], 'the chart\'s policy ConfigMap'), 'injector.policy renders a valid InjectorPolicy')
})

t.test('the chart\'s objects: least-privilege RBAC, hardened pods, the webhook as designed', { skip }, async (t) => {
  const all = objectsOf(render(''))
  const find = (kind: string): Obj => all.find((o) => o.kind === kind)!
  t.same([...new Set(all.map((o) => o.kind))].sort(), ['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'MutatingWebhookConfiguration', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount'])
  t.same(find('ClusterRole').rules, [{ apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['vault-injector'], verbs: ['get', 'list', 'watch', 'patch'] }])
  const pod = find('Deployment').spec.template.spec
  const container = pod.containers[0]
  t.match(pod.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
  t.match(container.securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } })
  t.equal(container.lifecycle.preStop.sleep.seconds, 5, 'preStop pause before SIGTERM')
  t.equal(pod.topologySpreadConstraints.length, 2, 'spread over nodes and zones')
  t.ok(container.resources.requests.cpu && container.resources.limits.memory)
  const hook = find('MutatingWebhookConfiguration').webhooks[0]
  t.match(hook, { failurePolicy: 'Ignore', timeoutSeconds: 10, sideEffects: 'None', reinvocationPolicy: 'IfNeeded' })
  t.equal(hook.matchConditions[0].expression, "has(object.metadata.annotations) && 'vault.hashicorp.com/agent-inject' in object.metadata.annotations")
  t.equal(find('PodDisruptionBudget').spec.minAvailable, 1)

  const one = objectsOf(render(join(CHART, 'ci/one-replica-values.yaml')))
  t.notOk(one.some((o) => o.kind === 'Role' || o.kind === 'PodDisruptionBudget'), 'one replica: no Role (no Secret, no Lease) and no PDB')
  const files = objectsOf(render(join(CHART, 'ci/secret-certs-values.yaml')))
  t.notOk(files.some((o) => o.kind.includes('Role')), 'certificates from a Secret: no RBAC at all')
  const vaultHelm = objectsOf(render(join(CHART, 'ci/vault-helm-injector-values.yaml')))
  const vhHook = vaultHelm.find((o) => o.kind === 'MutatingWebhookConfiguration')!.webhooks[0]
  t.match(vhHook, { failurePolicy: 'Fail', timeoutSeconds: 30 }, 'vault-helm\'s injector.webhook values are honoured')
  t.same(vhHook.namespaceSelector, { matchLabels: { 'sidecar-injector': 'enabled' } }, 'and its older injector.namespaceSelector')
  t.same(vhHook.objectSelector, { matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'NotIn', values: ['vault-injector'] }] }, 'and injector.objectSelector given as a string')
  t.same(vaultHelm.find((o) => o.kind === 'Deployment')!.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchLabels['app.kubernetes.io/instance'], 'vault-injector', 'and a templated affinity string')
  const vhEnv = Object.fromEntries(vaultHelm.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].env.map((e: Obj) => [e.name, e.value]))
  t.match(vhEnv, { AGENT_INJECT_VAULT_ADDR: 'https://vault.example.com:8200', AGENT_INJECT_VAULT_AUTH_PATH: 'auth/k8s', AGENT_INJECT_DEFAULT_TEMPLATE: 'json', AGENT_INJECT_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL: '5m', AGENT_INJECT_VAULT_IMAGE: 'hashicorp/vault:1.21.2' })
})

t.test('csi.enabled renders the kustomize components\' DaemonSet and (opt-in) restart RBAC; the provider\'s rights follow what it uses', { skip }, async (t) => {
  // The component in an overlay with the chart's namespace, built by the real kustomize.
  const overlay = join(cp.dir, 'csi-overlay')
  mkdirSync(overlay)
  writeFileSync(join(overlay, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ${NS}\nresources:\n  - ${relative(overlay, join(ROOT, 'manifests'))}\ncomponents:\n  - ${relative(overlay, join(ROOT, 'manifests/csi-provider'))}\n  - ${relative(overlay, join(ROOT, 'manifests/csi-restart'))}\n`)
  const built = spawnSync(KUSTOMIZE, ['build', overlay], { encoding: 'utf8' })
  t.equal(built.status, 0, built.stderr || 'kustomize build')
  const kustomized = objectsOf(built.stdout)
  const restartOn = ['csi.enabled=true', 'csi.restartOnRotation.enabled=true', 'csi.hmacSecretName=vault-injector-csi-hmac']
  const chart = objectsOf(render('', ...restartOn))
  const pick = (objects: Obj[], kind: string, name: string): Obj => objects.find((o) => o.kind === kind && o.metadata.name === name)!
  const fromKustomize = pick(kustomized, 'DaemonSet', 'vault-injector-csi-provider')
  const fromChart = pick(chart, 'DaemonSet', 'vault-injector-csi-provider')
  t.ok(fromKustomize && fromChart, 'both make the DaemonSet vault-injector-csi-provider')
  t.equal(fromChart.metadata.namespace, fromKustomize.metadata.namespace)
  t.same(fromChart.spec.template.spec, fromKustomize.spec.template.spec, 'the same pod: image, args, env, probes, resources, security, tolerations, hostPath, the HMAC key Secret')
  t.same(fromChart.spec.updateStrategy, fromKustomize.spec.updateStrategy)
  // Helm's labels add the release (app.kubernetes.io/instance) to the selector; the name label is the same.
  t.match(fromChart.spec.selector.matchLabels, fromKustomize.spec.selector.matchLabels, 'the selector has the component\'s labels (and the release)')
  t.same(pick(chart, 'ServiceAccount', 'vault-injector-csi-provider').automountServiceAccountToken, true)

  const restartRules = (objects: Obj[], kind: string, name: string): Obj[] => pick(objects, kind, name).rules
  t.same(restartRules(chart, 'ClusterRole', 'vault-injector-csi-restart'), restartRules(kustomized, 'ClusterRole', 'vault-injector-csi-restart'), 'the webhook\'s restart rights, as the component grants them')
  t.same(restartRules(chart, 'Role', 'vault-injector-csi-restart'), restartRules(kustomized, 'Role', 'vault-injector-csi-restart'), 'and the Lease, with two replicas')
  t.same(pick(chart, 'ClusterRoleBinding', 'vault-injector-csi-restart').subjects, [{ kind: 'ServiceAccount', name: 'vault-injector', namespace: NS }])
  // Exactly these rights, no more: patch only on the three workload kinds' pod templates (as `kubectl rollout restart`).
  t.same(restartRules(chart, 'ClusterRole', 'vault-injector-csi-restart'), [
    { apiGroups: ['secrets-store.csi.x-k8s.io'], resources: ['secretproviderclasspodstatuses'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
    { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['get'] },
    { apiGroups: ['apps'], resources: ['deployments', 'statefulsets', 'daemonsets'], verbs: ['get', 'patch'] },
    { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  ], 'restartOnRotation: exactly the restart rules')
  const envOf = (objects: Obj[]): Record<string, string> => Object.fromEntries(pick(objects, 'Deployment', 'vault-injector').spec.template.spec.containers[0].env.map((e: Obj) => [e.name, e.value]))
  t.equal(envOf(chart).AGENT_INJECT_CSI_RESTART_ON_ROTATION, envOf(kustomized).AGENT_INJECT_CSI_RESTART_ON_ROTATION, 'the webhook rolls workloads, as with the component')
  t.equal(envOf(chart).AGENT_INJECT_USE_LEADER_ELECTOR, 'true', 'one of its replicas, by the Lease')
  // The component grants namespaces read always ("drop it if you use no policy"); the chart only with a policy.
  t.notOk(chart.some((o) => o.kind === 'ClusterRole' && o.metadata.name === 'vault-injector-csi-provider'), 'no policy, no token requests: the provider gets no API rights')

  t.notOk(objectsOf(render('')).some((o) => o.metadata.name.includes('csi')), 'csi.enabled defaults to false: nothing of it')
  const noRestart = objectsOf(render('', 'csi.enabled=true'))
  t.notOk(noRestart.some((o) => o.metadata.name === 'vault-injector-csi-restart'), 'csi.enabled alone: restartOnRotation is off, no restart RBAC')
  const patchRules = noRestart.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role').flatMap((o) => o.rules).filter((r: Obj) => r.verbs.includes('patch') || r.verbs.includes('*'))
  t.same(patchRules, [{ apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['vault-injector'], verbs: ['get', 'list', 'watch', 'patch'] }], 'no patch on any workload: only on its own webhook configuration')
  t.equal(envOf(noRestart).AGENT_INJECT_CSI_RESTART_ON_ROTATION, undefined, 'and the webhook does not watch')
  const noKey = run(HELM, ['template', 'vault-injector', CHART, '--set', 'csi.enabled=true', '--set', 'csi.restartOnRotation.enabled=true'])
  t.ok(noKey.status !== 0 && /csi.restartOnRotation.enabled needs csi.hmacSecretName/.test(noKey.stderr), `restartOnRotation without an HMAC Secret refused: ${noKey.stderr.trim().slice(0, 120)}`)
  const noLease = run(HELM, ['template', 'vault-injector', CHART, ...restartOn.flatMap((v) => ['--set', v]), '--set', 'injector.replicas=2', '--set', 'injector.leaderElector.enabled=false'])
  t.ok(noLease.status !== 0 && /needs injector.leaderElector.enabled/.test(noLease.stderr), `several replicas rolling without the Lease refused: ${noLease.stderr.trim().slice(0, 120)}`)
  // csi.restartOnRotation.namespaces: a Role per namespace with the same rules, no ClusterRole, and the webhook told to watch only there.
  const scoped = objectsOf(render('', ...restartOn, 'csi.restartOnRotation.namespaces={shop,vault}'))
  t.notOk(scoped.some((o) => o.kind === 'ClusterRole' && o.metadata.name === 'vault-injector-csi-restart'), 'namespaces given: no ClusterRole for restarts')
  const workloadRoles = scoped.filter((o) => o.kind === 'Role' && o.metadata.name === 'vault-injector-csi-restart-workloads')
  t.same(workloadRoles.map((o) => o.metadata.namespace), ['shop', 'vault'], 'a Role in each namespace listed')
  for (const role of workloadRoles) t.same(role.rules, restartRules(chart, 'ClusterRole', 'vault-injector-csi-restart'), `${role.metadata.namespace}: the same rules, in that namespace only`)
  t.same(scoped.filter((o) => o.kind === 'RoleBinding' && o.metadata.name === 'vault-injector-csi-restart-workloads').map((o) => [o.metadata.namespace, o.subjects]), ['shop', 'vault'].map((ns) => [ns, [{ kind: 'ServiceAccount', name: 'vault-injector', namespace: NS }]]))
  t.ok(scoped.some((o) => o.kind === 'Role' && o.metadata.name === 'vault-injector-csi-restart' && o.metadata.namespace === NS), 'the Lease Role beside it, under its own name')
  t.equal(envOf(scoped).AGENT_INJECT_CSI_RESTART_NAMESPACES, 'shop,vault', 'the webhook watches only there')
  t.equal(envOf(chart).AGENT_INJECT_CSI_RESTART_NAMESPACES, undefined, 'without namespaces: every namespace')
  const oneReplica = objectsOf(render('', ...restartOn, 'injector.replicas=1'))
  t.notOk(oneReplica.some((o) => o.kind === 'Role'), 'one replica: no Lease Role for the restarter')

  const full = objectsOf(render(join(CHART, 'ci/csi-values.yaml')))
  t.same(pick(full, 'ClusterRole', 'vault-injector-csi-provider').rules.map((r: Obj) => r.resources[0]), ['namespaces', 'serviceaccounts/token'], 'a policy: namespaces read; requestTokens: token create')
  const pod = pick(full, 'DaemonSet', 'vault-injector-csi-provider').spec.template.spec
  t.same(pod.volumes.find((v: Obj) => v.name === 'policy'), { name: 'policy', configMap: { name: 'vault-injector-policy' } }, 'the webhook\'s policy ConfigMap')
  // The provider reloads the file in place (test/csi/policy-reload.test.ts): a policy edit must not roll the DaemonSet.
  t.notOk(Object.keys(pick(full, 'DaemonSet', 'vault-injector-csi-provider').spec.template.metadata.annotations ?? {}).some((k) => k.startsWith('checksum/')), 'no policy checksum on the provider pods')
  t.ok(full.some((o) => o.kind === 'ConfigMap' && o.metadata.name === 'vault-injector-policy'))
  t.match(pod.containers[0].args, ['csi-provider', '--provider-dir=/var/run/secrets-store-csi-providers', '--health-listen=:8080', '--hmac-key-file=/etc/vault-injector/csi-hmac/key', '--vault-mount=k8s'])
  t.equal(pod.volumes.find((v: Obj) => v.name === 'providers').hostPath.path, '/var/run/secrets-store-csi-providers', 'the provider folder, configurable')
  t.equal(pick(full, 'Deployment', 'vault-injector').spec.template.spec.containers[0].env.find((e: Obj) => e.name === 'AGENT_INJECT_CSI_RESTART_MIN_INTERVAL_SECONDS').value, '600')
  // values.schema.json: a misspelt csi value or a relative provider folder is refused before anything renders.
  const typo = run(HELM, ['template', 'vault-injector', CHART, '--set', 'csi.enabeld=true'])
  t.ok(typo.status !== 0 && /additional properties 'enabeld' not allowed/.test(typo.stderr), `csi.enabeld refused: ${typo.stderr.trim()}`)
  const relativeDir = run(HELM, ['template', 'vault-injector', CHART, '--set', 'csi.daemonSet.providersDir=providers'])
  t.ok(relativeDir.status !== 0 && /providersDir/.test(relativeDir.stderr), 'a relative providersDir refused')
})

t.test('helm install into the API server: the Deployment runs, elects a leader through its Lease and injects a pod; helm upgrade to one replica injects without Role or Secret', { skip }, async (t) => {
  const installed = helm('install', 'vault-injector', CHART, '--namespace', NS)
  t.equal(installed.status, 0, installed.status === 0 ? 'helm install' : installed.stderr)
  pods = await runDeployment(cp, NS, 'vault-injector', 'vault-injector')
  t.equal(pods.length, 2)
  await waitFor('both replicas ready', async () => pods.every((p) => p.ready()), 60_000)
  const holder = (await cp.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'vault-injector-leader', namespace: NS })).spec?.holderIdentity
  t.ok(pods.some((p) => p.name === holder), `the Lease names a replica (${holder})`)
  const first = await createUntilInjected(cp, APP_NS, 'helm', pods)
  t.same(first.pod.spec.containers.map((c: Obj) => c.name), ['app', 'vault-agent'], 'a pod is injected through the chart\'s webhook')
  for (const p of pods) t.notMatch(p.output(), /"level":50|forbidden/i, `${p.name}: no RBAC refusal, no error logged`)

  for (const p of pods) await p.stop()
  const upgraded = helm('upgrade', 'vault-injector', CHART, '--namespace', NS, '--set', 'injector.replicas=1')
  t.equal(upgraded.status, 0, upgraded.status === 0 ? 'helm upgrade --set injector.replicas=1' : upgraded.stderr)
  const rbac = cp.kubeConfig.makeApiClient(RbacAuthorizationV1Api)
  t.equal((await rbac.listNamespacedRole({ namespace: NS })).items.length, 0, 'the Role is gone')
  pods = await runDeployment(cp, NS, 'vault-injector', 'vault-injector')
  await waitFor('the replica ready', async () => pods.every((p) => p.ready()), 60_000)
  const second = await createUntilInjected(cp, APP_NS, 'helm-one', pods)
  t.same(second.pod.spec.containers.map((c: Obj) => c.name), ['app', 'vault-agent'], 'one replica, certificate in memory: a pod is injected')
  t.notMatch(pods[0]!.output(), /"level":50|forbidden/i, 'no RBAC refusal, no error logged')
  const values = parse(helm('get', 'values', 'vault-injector', '--namespace', NS, '-o', 'yaml').stdout) as Obj
  t.same(values, { injector: { replicas: 1 } })
})

t.test('helm upgrade with csi.enabled and csi.restartOnRotation.enabled: the provider DaemonSet is installed, and the webhook\'s replica, with the chart\'s RBAC, watches the driver\'s status objects and is ready to roll workloads', { skip }, async (t) => {
  for (const p of pods) await p.stop()
  // The driver's CRD, as its chart installs it.
  await installFixtureCrd(cp, 'secretproviderclasspodstatuses')
  const upgraded = helm('upgrade', 'vault-injector', CHART, '--namespace', NS, '--set', 'injector.replicas=1', '--set', 'csi.enabled=true', '--set', 'csi.restartOnRotation.enabled=true', '--set', 'csi.hmacSecretName=vault-injector-csi-hmac')
  t.equal(upgraded.status, 0, upgraded.status === 0 ? 'helm upgrade --set csi.enabled=true,csi.restartOnRotation.enabled=true' : upgraded.stderr)
  const ds = await cp.kubeConfig.makeApiClient(AppsV1Api).readNamespacedDaemonSet({ namespace: NS, name: 'vault-injector-csi-provider' })
  t.equal(ds.spec?.template.spec?.serviceAccountName, 'vault-injector-csi-provider', 'the DaemonSet is in the API server')
  pods = await runDeployment(cp, NS, 'vault-injector', 'vault-injector')
  await waitFor('the replica ready', async () => pods.every((p) => p.ready()), 60_000)
  await waitFor('the restarter ready (its list allowed by the chart\'s ClusterRole)', async () => pods[0]!.output().includes(RESTARTER_READY), 30_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${pods[0]!.output().slice(-3000)}`)
  })
  t.notMatch(pods[0]!.output(), /"level":50|forbidden/i, 'no RBAC refusal, no error logged')
})

t.test('helm upgrade with csi.restartOnRotation.namespaces={shop}: the ClusterRole is gone, and the namespaced Roles suffice for the webhook\'s watch', { skip }, async (t) => {
  for (const p of pods) await p.stop()
  const upgraded = helm('upgrade', 'vault-injector', CHART, '--namespace', NS, '--reuse-values', '--set', `csi.restartOnRotation.namespaces={${APP_NS}}`)
  t.equal(upgraded.status, 0, upgraded.status === 0 ? 'helm upgrade --set csi.restartOnRotation.namespaces={shop}' : upgraded.stderr)
  const rbac = cp.kubeConfig.makeApiClient(RbacAuthorizationV1Api)
  t.notOk((await rbac.listClusterRole()).items.some((r) => r.metadata?.name === 'vault-injector-csi-restart'), 'no ClusterRole with patch on workloads')
  t.ok((await rbac.listNamespacedRole({ namespace: APP_NS })).items.some((r) => r.metadata?.name === 'vault-injector-csi-restart-workloads'), `a Role in ${APP_NS}`)
  pods = await runDeployment(cp, NS, 'vault-injector', 'vault-injector')
  await waitFor('the replica ready', async () => pods.every((p) => p.ready()), 60_000)
  await waitFor('the restarter ready (its namespaced list allowed by the Role)', async () => pods[0]!.output().includes(RESTARTER_READY), 30_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${pods[0]!.output().slice(-3000)}`)
  })
  t.notMatch(pods[0]!.output(), /"level":50|forbidden/i, 'no RBAC refusal, no error logged')
})
