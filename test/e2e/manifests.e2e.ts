// manifests/base as the API server sees it: every object is sent with
// server-side dry run and strict field validation, so a misspelt field, a
// matchConditions expression that does not compile, or a value the API
// refuses fails here rather than at a user's `kubectl apply -k manifests/`.
// (The cert-manager overlay adds cert-manager's own kinds, whose CRDs are not
// installed here; its patches to these objects are covered by
// test/kube/manifests.test.ts.)
import t from 'tap'
import { CoreV1Api, type KubernetesObject } from '@kubernetes/client-node'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse, parseAllDocuments } from 'yaml'
import { dryRunCreate, ROOT, startControlPlane, type ControlPlane } from './harness.ts'

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
