// manifests/base as the API server sees it: every object is sent with
// server-side dry run and strict field validation, so a misspelt field, a
// matchConditions expression that does not compile, or a value the API
// refuses fails here rather than at a user's `kubectl apply -k manifests/`.
// Then the cert-manager overlay installed into another namespace (an overlay
// with `namespace: vault`, built by the real kustomize): kubeconform -strict
// with schemas from this API server's OpenAPI, and the same dry run. The
// cert-manager kinds (Certificate, Issuer) have no CRD here: both checks skip
// them, and their namespace-dependent names are checked by value.
import t from 'tap'
import { CoreV1Api, type KubernetesObject } from '@kubernetes/client-node'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parse, parseAllDocuments } from 'yaml'
import { BIN, dryRunCreate, ROOT, startControlPlane, type ControlPlane } from './harness.ts'
import { writeKubeconformSchemas } from './openapi-schemas.ts'

const BASE = join(ROOT, 'manifests/base')

// The kinds the base holds, each checked below.
const KINDS = ['Namespace', 'ServiceAccount', 'Service', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Deployment', 'PodDisruptionBudget', 'NetworkPolicy', 'MutatingWebhookConfiguration']

let cp: ControlPlane

t.before(async () => {
  cp = await startControlPlane()
})
t.teardown(async () => cp?.stop())

function baseObjects(): KubernetesObject[] {
  const kustomization = parse(readFileSync(join(BASE, 'kustomization.yaml'), 'utf8')) as { resources: string[] }
  return kustomization.resources.flatMap((file) => parseAllDocuments(readFileSync(join(BASE, file), 'utf8')).map((doc) => doc.toJS() as KubernetesObject))
}

t.test('every object of manifests/base passes the API server with dry run and strict field validation', async (t) => {
  const objects = baseObjects()
  t.same([...new Set(objects.map((o) => o.kind))].sort(), [...KINDS].sort(), 'the base holds the kinds listed here, no more and no fewer')
  // Namespaced objects are checked against a namespace that exists.
  const namespace = objects.find((o) => o.kind === 'Namespace')!
  await cp.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: namespace })

  for (const object of objects) {
    if (object.kind === 'Namespace') continue
    const answer = await dryRunCreate(cp, object)
    t.equal(answer.status, 201, `${object.kind} ${object.metadata!.name}: ${answer.status === 201 ? 'accepted' : answer.text}`)
    t.same(answer.warnings, [], `${object.kind} ${object.metadata!.name}: no warnings`)
  }
})

t.test('a misspelt field and a broken matchConditions expression are refused: the check above can fail', async (t) => {
  const deployment = baseObjects().find((o) => o.kind === 'Deployment') as KubernetesObject & { spec: Record<string, unknown> }
  deployment.spec.replicaz = 2
  const typo = await dryRunCreate(cp, deployment)
  t.equal(typo.status, 400, 'an unknown field is refused')
  t.match(typo.text, /replicaz/)

  const webhook = baseObjects().find((o) => o.kind === 'MutatingWebhookConfiguration') as KubernetesObject & { webhooks: { matchConditions: { expression: string }[] }[] }
  webhook.webhooks[0]!.matchConditions[0]!.expression = 'object.metadata.annotations[' // not CEL
  const answer = await dryRunCreate(cp, webhook)
  t.equal(answer.status, 422, 'a broken expression is refused')
  t.match(answer.text, /matchConditions/)
})

t.test('the cert-manager overlay in namespace vault: kustomize build, kubeconform -strict and the strict dry run; every name says vault', async (t) => {
  const [kustomize, kubeconform] = [join(BIN, 'kustomize'), join(BIN, 'kubeconform')]
  t.same([kustomize, kubeconform].filter((p) => !existsSync(p)), [], 'kustomize and kubeconform are built (test/e2e/build.sh)')
  const namespace = 'vault'
  const overlay = join(cp.dir, 'cert-manager-overlay')
  mkdirSync(overlay)
  writeFileSync(join(overlay, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ${namespace}\nresources:\n  - ${relative(overlay, join(ROOT, 'manifests/cert-manager'))}\n`)
  const built = spawnSync(kustomize, ['build', overlay], { encoding: 'utf8' })
  t.equal(built.status, 0, built.stderr || 'kustomize build')
  const objects = parseAllDocuments(built.stdout).map((d) => d.toJS() as KubernetesObject & Record<string, any>)
  t.notMatch(built.stdout, /vault-injector\.vault-injector|namespace: vault-injector|\$\(/, 'no other namespace and no unfilled variable left')
  const serving = objects.find((o) => o.kind === 'Certificate' && o.metadata!.name === 'vault-injector-serving')!
  t.same(serving.spec.dnsNames, ['vault-injector', 'vault-injector.vault', 'vault-injector.vault.svc', 'vault-injector.vault.svc.cluster.local'], 'the serving certificate names the Service in vault')
  t.equal(serving.metadata!.namespace, namespace)
  const webhook = objects.find((o) => o.kind === 'MutatingWebhookConfiguration')!
  t.equal(webhook.metadata!.annotations!['cert-manager.io/inject-ca-from'], `${namespace}/vault-injector-serving`, 'cainjector reads that Certificate')

  const noCrd = ['Certificate', 'Issuer']
  const kinds = new Set(objects.map((o) => o.kind!).filter((k) => !noCrd.includes(k)))
  const { location } = await writeKubeconformSchemas(cp, join(cp.dir, 'schemas'), kinds)
  const checked = spawnSync(kubeconform, ['-strict', '-summary', '-schema-location', location, '-skip', noCrd.join(','), '-'], { encoding: 'utf8', input: built.stdout })
  t.equal(checked.status, 0, `kubeconform ${checked.status === 0 ? checked.stdout.trim() : checked.stdout + checked.stderr}`)

  await cp.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: objects.find((o) => o.kind === 'Namespace')! })
  for (const object of objects) {
    if (object.kind === 'Namespace' || noCrd.includes(object.kind!)) continue
    const answer = await dryRunCreate(cp, object)
    t.equal(answer.status, 201, `${object.kind} ${object.metadata!.name}: ${answer.status === 201 ? 'accepted' : answer.text}`)
    t.same(answer.warnings, [], `${object.kind} ${object.metadata!.name}: no warnings`)
  }
})
