// admit(): the AdmissionReview logic without HTTP, which `serve` and `review`
// share. Here: how it calls the policy and what the policy's verdict does.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { defaultSettings } from '../../src/settings.ts'
import type { JsonObject } from '../../src/engine/types.ts'
import type { NamespaceContext, PolicyEvaluator, PolicySubject, PolicyVerdict } from '../../src/policy/types.ts'
import { admit, depthExceeds, redactValues } from '../../src/webhook/admission.ts'
import { admitted, annotatedPod } from '../helpers/pods.ts'

type Obj = Record<string, any>
const settings = defaultSettings()
const example = JSON.parse(readFileSync(new URL('../../examples/admission-review.json', import.meta.url), 'utf8')) as Obj
const unannotated = JSON.parse(readFileSync(new URL('../../examples/admission-review-unannotated.json', import.meta.url), 'utf8')) as Obj

function review(pod: JsonObject, namespace = 'team-a', apiVersion = 'admission.k8s.io/v1'): Obj {
  return {
    apiVersion,
    kind: 'AdmissionReview',
    request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace, operation: 'CREATE', object: pod },
  }
}

// A policy that records its calls and answers with a fixed verdict.
function fakePolicy(verdict: PolicyVerdict, defaults: Record<string, string> = {}) {
  const calls = { defaults: [] as NamespaceContext[], evaluate: [] as PolicySubject[] }
  const policy: PolicyEvaluator = {
    name: 'fake',
    applies: () => true,
    annotationDefaults(ctx) {
      calls.defaults.push(ctx)
      return defaults
    },
    evaluate(subject) {
      calls.evaluate.push(subject)
      return verdict
    },
  }
  return { policy, calls }
}

t.test('the shipped examples: the annotated pod is injected, the other passes unchanged', async (t) => {
  const injected = admit(example, { settings })
  t.equal(injected.statusCode, 200)
  const response = injected.body.response as Obj
  t.equal(response.uid, example.request.uid)
  t.equal(response.allowed, true)
  t.equal(response.patchType, 'JSONPatch')
  t.match(injected.audit, { decision: 'inject', namespace: example.request.namespace, role: example.request.object.metadata.annotations['vault.hashicorp.com/role'] })
  t.equal(injected.audit!.secretPaths!.length, 3, 'two agent-inject-secret-* paths and the one the template reads')

  const plain = admit(unannotated, { settings })
  t.same(plain.body.response, { uid: unannotated.request.uid, allowed: true })
  t.equal(plain.audit!.decision, 'skip')
})

t.test('namespace defaults from the policy reach the engine; namespace labels come from the lookup', async (t) => {
  const pod = admitted({ metadata: { name: 'web', annotations: { 'vault.hashicorp.com/agent-inject': 'true' } }, spec: { containers: [{ name: 'web', image: 'web:1' }] } }, 'shop')
  const { policy, calls } = fakePolicy({ warnings: [], findings: [] }, { 'vault.hashicorp.com/role': 'shop-web' })
  const lookups: string[] = []
  const outcome = admit(review(pod, 'shop'), { settings, policy, namespaceLabels: (ns) => (lookups.push(ns), { 'kubernetes.io/metadata.name': ns, team: 'shop' }) })
  t.same(lookups, ['shop'])
  t.same(calls.defaults, [{ namespace: 'shop', namespaceLabels: { 'kubernetes.io/metadata.name': 'shop', team: 'shop' } }])
  t.equal(outcome.audit!.decision, 'inject')
  t.equal(outcome.audit!.role, 'shop-web', 'the role came from the namespace default')
  t.equal(calls.evaluate.length, 1)
  t.same(calls.evaluate[0]!.facts.roles, ['shop-web'], 'the policy judges the decoded agent configuration')
  t.same(calls.evaluate[0]!.facts.agents.map((a) => a.container), ['vault-agent-init', 'vault-agent'], 'and the final agent containers')
})

t.test('a policy denial is a 403; its warnings and findings are passed on', async (t) => {
  const findings = [{ rule: 'allowedRoles', mode: 'enforce' as const, message: 'role "app" is not allowed in team-a' }]
  const { policy } = fakePolicy({ denied: 'policy team-a: role "app" is not allowed', warnings: ['agent limits are not set'], findings })
  for (const apiVersion of ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1']) {
    const outcome = admit(review(annotatedPod({}), 'team-a', apiVersion), { settings, policy })
    t.equal(outcome.statusCode, 200, 'a verdict, not an HTTP error')
    t.equal(outcome.body.apiVersion, apiVersion)
    t.same(outcome.body.response, {
      uid: 'u-1',
      allowed: false,
      status: { code: 403, message: 'policy team-a: role "app" is not allowed', reason: 'Forbidden' },
      warnings: ['agent limits are not set'],
    })
    t.match(outcome.audit, { decision: 'deny', reason: 'policy team-a: role "(value not logged)" is not allowed', policyFindings: findings })
  }
})

t.test('policy warnings go out with an allowed answer; the policy is not asked about pods that are not injected', async (t) => {
  const { policy, calls } = fakePolicy({ warnings: ['consider agent-limits-cpu'], findings: [{ rule: 'limits', mode: 'warn', message: 'no limits' }] })
  const warned = admit(review(annotatedPod({})), { settings, policy })
  t.equal((warned.body.response as Obj).allowed, true)
  t.same((warned.body.response as Obj).warnings, ['consider agent-limits-cpu'])
  t.equal(warned.audit!.warnings, 1)

  const skipped = admit(review(admitted({ metadata: { name: 'x' }, spec: { containers: [{ name: 'x', image: 'x' }] } }, 'team-a')), { settings, policy })
  t.equal(skipped.audit!.decision, 'skip')
  t.equal(calls.evaluate.length, 1, 'evaluate ran for the injected pod only')

  const invalid = admit(review(annotatedPod({ 'vault.hashicorp.com/agent-limits-cpu': 'lots' })), { settings, policy })
  t.match(invalid.body.response, { allowed: false, status: { code: 400, reason: 'BadRequest' } }, 'invalid annotations stay a 400')
})

t.test('not for this webhook: other kinds, other operations, dry runs', async (t) => {
  const base = review(annotatedPod({}))
  const cases: [Obj, string][] = [
    [{ kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }, 'not a Pod (apps/Deployment)'],
    [{ operation: 'UPDATE' }, 'operation UPDATE is not mutated (only CREATE)'],
    [{ operation: 'DELETE', object: null }, 'operation DELETE is not mutated (only CREATE)'],
  ]
  for (const [overrides, reason] of cases) {
    const outcome = admit({ ...base, request: { ...base.request, ...overrides } }, { settings })
    t.same(outcome.body.response, { uid: 'u-1', allowed: true }, reason)
    t.match(outcome.audit, { decision: 'ignore', reason })
  }
  const dry = admit({ ...base, request: { ...base.request, dryRun: true } }, { settings })
  const normal = admit(base, { settings })
  t.same(dry.body, normal.body, 'a dry run gets the same answer')
  t.equal(dry.audit!.dryRun, true, 'and the audit line says it was one')
})

t.test('bodies that are not AdmissionReviews are 400s with a reason', async (t) => {
  const bad: [unknown, RegExp][] = [
    [null, /not a JSON object/],
    ['text', /not a JSON object/],
    [{ apiVersion: 'admission.k8s.io/v2', kind: 'AdmissionReview', request: {} }, /expected an AdmissionReview/],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: 'x' }, /has no request/],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 7 } }, /request.uid is missing/],
  ]
  for (const [body, message] of bad) {
    const outcome = admit(body, { settings })
    t.equal(outcome.statusCode, 400)
    t.match(outcome.body.message, message)
    t.equal(outcome.audit, undefined)
  }
})

t.test('helpers: depth limit and log redaction', async (t) => {
  let deep: unknown = 1
  for (let i = 0; i < 150; i++) deep = [deep]
  t.ok(depthExceeds(deep, 100))
  t.notOk(depthExceeds({ a: { b: [1, { c: 2 }] } }, 100))
  // Exactly at the limit passes, one level more does not (objects and arrays alike).
  const nest = (levels: number): unknown => (levels === 1 ? { leaf: 'x' } : levels % 2 ? { a: nest(levels - 1) } : [nest(levels - 1)])
  t.notOk(depthExceeds(nest(100), 100))
  t.ok(depthExceeds(nest(101), 100))
  t.ok(depthExceeds({ z: 1, ok: [1, 2], deep: nest(100) }, 100), 'found below a sibling that is shallow')
  t.equal(redactValues('agent-limits-cpu: "s3cr\\"et" is not a quantity'), 'agent-limits-cpu: "(value not logged)" is not a quantity')
})

t.test('any JSON in any part of a review: an answer, never an exception', async (t) => {
  const fc = (await import('fast-check')).default
  const base = review(annotatedPod({ 'vault.hashicorp.com/agent-inject-secret-db': 'db/creds/app' }))
  const anyJson = fc.jsonValue({ maxDepth: 4 })
  const spots: ((value: unknown) => unknown)[] = [
    (v) => v,
    (v) => ({ ...base, request: v }),
    (v) => ({ ...base, request: { ...base.request, object: v } }),
    (v) => ({ ...base, request: { ...base.request, object: { ...base.request.object, spec: v } } }),
    (v) => ({ ...base, request: { ...base.request, object: { ...base.request.object, metadata: { annotations: { 'vault.hashicorp.com/agent-inject': 'true', 'vault.hashicorp.com/role': v } } } } }),
    (v) => ({ ...base, request: { ...base.request, kind: v, operation: v, namespace: v, uid: v } }),
  ]
  fc.assert(
    fc.property(fc.nat(spots.length - 1), anyJson, (spot, value) => {
      const outcome = admit(spots[spot]!(value), { settings })
      return outcome.statusCode === 200 || outcome.statusCode === 400
    }),
    { numRuns: 600 },
  )
  t.pass('600 random reviews answered')
})

t.test('a namespace whose labels the webhook does not know: rules that select by label apply (fail closed)', async (t) => {
  const { parsePolicy } = await import('../../src/policy/load.ts')
  const policy = parsePolicy(
    'apiVersion: vault-injector.dev/v1alpha1\nkind: InjectorPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: shop\n      namespaces: {selector: {matchLabels: {team: shop}}}\n      allow: {roles: ["shop-*"]}\n',
    'p',
  )
  const pod = admitted(annotatedPod({ 'vault.hashicorp.com/role': 'payments' }), 'shop')
  const seen = admit(review(pod, 'shop'), { settings, policy, namespaceLabels: () => ({ 'kubernetes.io/metadata.name': 'shop', team: 'shop' }) })
  t.equal((seen.body.response as Obj).allowed, false, 'seen and selected: denied')
  const unseen = admit(review(pod, 'shop'), { settings, policy, namespaceLabels: () => undefined })
  t.equal((unseen.body.response as Obj).allowed, false, 'not seen yet (just created, watch not synced): denied, not waved through')
  t.match((unseen.body.response as Obj).status.message, /"payments" is not allowed.*not known to vault-injector yet/)
  const noCluster = admit(review(pod, 'shop'), { settings, policy })
  t.equal((noCluster.body.response as Obj).allowed, false, 'no cluster to read labels from: denied too')
  const fine = admit(review(admitted(annotatedPod({ 'vault.hashicorp.com/role': 'shop-web' }), 'shop'), 'shop'), { settings, policy, namespaceLabels: () => undefined })
  t.equal((fine.body.response as Obj).allowed, true, 'a pod within the rule is admitted while the labels are unknown')
})
