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
import https from 'node:https'
import { join } from 'node:path'
import { parse, parseAllDocuments } from 'yaml'
import { ROOT, startControlPlane, type ControlPlane } from './harness.ts'

const BASE = join(ROOT, 'manifests/base')

// Where each kind in the base is created: [API prefix, plural, namespaced].
const PATHS: Record<string, [string, string, boolean]> = {
  Namespace: ['/api/v1', 'namespaces', false],
  ServiceAccount: ['/api/v1', 'serviceaccounts', true],
  Service: ['/api/v1', 'services', true],
  ClusterRole: ['/apis/rbac.authorization.k8s.io/v1', 'clusterroles', false],
  ClusterRoleBinding: ['/apis/rbac.authorization.k8s.io/v1', 'clusterrolebindings', false],
  Role: ['/apis/rbac.authorization.k8s.io/v1', 'roles', true],
  RoleBinding: ['/apis/rbac.authorization.k8s.io/v1', 'rolebindings', true],
  Deployment: ['/apis/apps/v1', 'deployments', true],
  PodDisruptionBudget: ['/apis/policy/v1', 'poddisruptionbudgets', true],
  NetworkPolicy: ['/apis/networking.k8s.io/v1', 'networkpolicies', true],
  MutatingWebhookConfiguration: ['/apis/admissionregistration.k8s.io/v1', 'mutatingwebhookconfigurations', false],
}

let cp: ControlPlane

t.before(async () => {
  cp = await startControlPlane()
})
t.teardown(async () => cp?.stop())

function baseObjects(): KubernetesObject[] {
  const kustomization = parse(readFileSync(join(BASE, 'kustomization.yaml'), 'utf8')) as { resources: string[] }
  return kustomization.resources.flatMap((file) => parseAllDocuments(readFileSync(join(BASE, file), 'utf8')).map((doc) => doc.toJS() as KubernetesObject))
}

// POST with the admin credentials; the status, the body and any Warning headers.
async function post(path: string, body: unknown): Promise<{ status: number; text: string; warnings: string[] }> {
  const options: https.RequestOptions = { method: 'POST', headers: { 'content-type': 'application/json' } }
  await cp.kubeConfig.applyToHTTPSOptions(options)
  return new Promise((resolve, reject) => {
    const req = https.request(`${cp.apiUrl}${path}`, options, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')))
      res.on('end', () => {
        const warning = res.headers.warning
        resolve({ status: res.statusCode ?? 0, text, warnings: warning === undefined ? [] : [warning].flat() })
      })
    })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

t.test('every object of manifests/base passes the API server with dry run and strict field validation', async (t) => {
  const objects = baseObjects()
  t.same([...new Set(objects.map((o) => o.kind))].sort(), Object.keys(PATHS).sort(), 'the base holds the kinds listed here, no more and no fewer')
  // Namespaced objects are checked against a namespace that exists.
  const namespace = objects.find((o) => o.kind === 'Namespace')!
  await cp.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: namespace })

  for (const object of objects) {
    if (object.kind === 'Namespace') continue
    const [prefix, plural, namespaced] = PATHS[object.kind!]!
    const path = `${prefix}${namespaced ? `/namespaces/${object.metadata!.namespace}` : ''}/${plural}?dryRun=All&fieldValidation=Strict`
    const answer = await post(path, object)
    t.equal(answer.status, 201, `${object.kind} ${object.metadata!.name}: ${answer.status === 201 ? 'accepted' : answer.text}`)
    t.same(answer.warnings, [], `${object.kind} ${object.metadata!.name}: no warnings`)
  }
})

t.test('a misspelt field and a broken matchConditions expression are refused: the check above can fail', async (t) => {
  const deployment = baseObjects().find((o) => o.kind === 'Deployment') as KubernetesObject & { spec: Record<string, unknown> }
  deployment.spec.replicaz = 2
  const typo = await post(`/apis/apps/v1/namespaces/${deployment.metadata!.namespace}/deployments?dryRun=All&fieldValidation=Strict`, deployment)
  t.equal(typo.status, 400, 'an unknown field is refused')
  t.match(typo.text, /replicaz/)

  const webhook = baseObjects().find((o) => o.kind === 'MutatingWebhookConfiguration') as KubernetesObject & { webhooks: { matchConditions: { expression: string }[] }[] }
  webhook.webhooks[0]!.matchConditions[0]!.expression = 'object.metadata.annotations[' // not CEL
  const answer = await post('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations?dryRun=All&fieldValidation=Strict', webhook)
  t.equal(answer.status, 422, 'a broken expression is refused')
  t.match(answer.text, /matchConditions/)
})
