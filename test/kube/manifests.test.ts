// The shipped manifests: they parse, the webhook configuration is exactly
// what `register` builds, and the Deployment keeps its security promises.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { parseAllDocuments } from 'yaml'
import { buildWebhookConfiguration, DEFAULT_WEBHOOK_OPTIONS, MATCH_CONDITION_EXPRESSION } from '../../src/kube/webhook-config.ts'
import { webhookOptionsFrom } from '../../src/cli/register.ts'

type Obj = Record<string, any>
const dir = new URL('../../manifests/', import.meta.url)
const load = (file: string): Obj[] => parseAllDocuments(readFileSync(new URL(file, dir), 'utf8')).map((d) => d.toJS() as Obj)

t.test('every file in the kustomization exists and parses', async (t) => {
  const kustomization = load('kustomization.yaml')[0]!
  for (const file of kustomization.resources) t.ok(load(file).length > 0, file)
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  t.same([...files].sort(), [...kustomization.resources].sort(), 'no file left out')
})

t.test('the shipped MutatingWebhookConfiguration is what register builds', async (t) => {
  const shipped = load('mutating-webhook.yaml')[0]
  t.same(shipped, JSON.parse(JSON.stringify(buildWebhookConfiguration(DEFAULT_WEBHOOK_OPTIONS))))
  const defaults = webhookOptionsFrom({ name: 'vault-injector', namespace: 'vault-injector', service: 'vault-injector', servicePort: '443', path: '/mutate', failurePolicy: 'Ignore', timeoutSeconds: '5' })
  t.same(defaults, DEFAULT_WEBHOOK_OPTIONS, 'register\'s defaults are the shipped ones')
  const hook = shipped!.webhooks[0]
  t.equal(hook.sideEffects, 'None')
  t.same(hook.admissionReviewVersions, ['v1', 'v1beta1'])
  t.same(hook.rules, [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }])
  t.equal(hook.reinvocationPolicy, 'IfNeeded')
  t.ok(hook.timeoutSeconds <= 10)
  t.same(hook.namespaceSelector.matchExpressions[0].values, ['kube-system', 'kube-public', 'vault-injector'])
  t.equal(hook.matchConditions[0].expression, MATCH_CONDITION_EXPRESSION)
  t.throws(() => webhookOptionsFrom({ ...{ name: 'x', namespace: 'n', service: 's', servicePort: '443', path: '/m', failurePolicy: 'Fail' }, timeoutSeconds: '60' }), /1-30/)
})

t.test('the Deployment: 2 replicas, probes, non-root, read-only, resources; service and PDB match it', async (t) => {
  const deployment = load('deployment.yaml')[0]!
  const pod = deployment.spec.template.spec
  const container = pod.containers[0]
  t.equal(deployment.spec.replicas, 2)
  t.ok(pod.affinity.podAntiAffinity, 'anti-affinity')
  t.equal(pod.securityContext.runAsNonRoot, true)
  t.equal(container.securityContext.readOnlyRootFilesystem, true)
  t.equal(container.securityContext.allowPrivilegeEscalation, false)
  t.same(container.securityContext.capabilities.drop, ['ALL'])
  t.ok(container.resources.requests.memory && container.resources.limits.memory)
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) t.equal(container[probe].httpGet.scheme, 'HTTPS', probe)
  t.equal(container.readinessProbe.httpGet.path, '/health/ready')
  const env = Object.fromEntries(container.env.map((e: Obj) => [e.name, e.value]))
  t.equal(env.AGENT_INJECT_TLS_AUTO, 'vault-injector', 'auto-TLS names the shipped webhook configuration')
  t.equal(load('service.yaml')[0]!.spec.ports[0].port, 443)
  t.same(load('pdb.yaml')[0]!.spec.selector.matchLabels, deployment.spec.selector.matchLabels)
})

t.test('RBAC grants only what auto-TLS and the namespace-label watch use, by name where RBAC allows', async (t) => {
  const [clusterRole, , role] = load('rbac.yaml')
  t.same(clusterRole!.rules, [
    { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['vault-injector'], verbs: ['get', 'patch'] },
    { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
  ])
  for (const rule of role!.rules) {
    if (rule.verbs.includes('create')) t.same(rule.verbs, ['create'], 'create is alone (it cannot take resourceNames)')
    else t.ok(rule.resourceNames?.length, `${rule.resources} limited by name`)
    t.notOk(rule.verbs.includes('delete') || rule.verbs.includes('list') || rule.verbs.includes('watch'))
  }
})

t.test('the cert-manager variant parses and injects the CA', async (t) => {
  const k = load('cert-manager/kustomization.yaml')[0]!
  t.ok(k.resources.includes('../'))
  t.match(JSON.stringify(k.patches), /cert-manager.io\/inject-ca-from/)
  t.equal(load('cert-manager/certificates.yaml').length, 4)
})
