// Properties of the engine over generated pods and annotation maps.
import t from 'tap'
import fc from 'fast-check'
import fastJsonPatch from 'fast-json-patch'
import { ANNOTATIONS, fullName } from '../../src/engine/annotations.ts'
import { injectPod } from '../../src/engine/index.ts'
import { defaultSettings } from '../../src/settings.ts'
import type { JsonObject } from '../../src/engine/types.ts'
import { admitted } from '../helpers/pods.ts'

type Obj = Record<string, any>
const settings = defaultSettings()
const RUNS = Number(process.env.PROPERTY_RUNS ?? 300)

const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/)
// Fields the engine does not know, including ones Kubernetes may add later.
const unknownFields = fc.dictionary(fc.constantFrom('futureField', 'x-extension', 'restartPolicy', 'resizePolicy', 'weird~/key'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 })
const container = fc.record({
  name,
  image: fc.constantFrom('nginx:1.27', 'registry.example.com/app:1'),
  env: fc.array(fc.record({ name: fc.stringMatching(/^[A-Z_]{1,8}$/), value: fc.string({ maxLength: 8 }) }), { maxLength: 5 }),
  extra: unknownFields,
})

const validValues: Record<string, fc.Arbitrary<string>> = {
  'agent-inject-secret-db': fc.constantFrom('secret/data/db', 'database/creds/app'),
  'agent-inject-template-cfg': fc.constantFrom('{{ with secret "kv/cfg" }}{{ .Data.data.x }}{{ end }}', 'static'),
  'agent-pre-populate': fc.constantFrom('true', 'false'),
  'agent-pre-populate-only': fc.constantFrom('true', 'false'),
  'agent-init-first': fc.constantFrom('true', 'false'),
  'agent-limits-cpu': fc.constantFrom('', '1', '250m'),
  'agent-cache-enable': fc.constantFrom('true', 'false'),
  'agent-inject-token': fc.constantFrom('true', 'false'),
  'agent-share-process-namespace': fc.constantFrom('true', 'false'),
  'secret-volume-path-db': fc.constantFrom('/etc/db', '/vault/secrets'),
  'tls-secret': fc.constantFrom('vault-ca'),
}
const tableKeys = ANNOTATIONS.filter((a) => a.scope === 'pod').map(fullName)

const annotations = fc
  .tuple(
    fc.record(
      Object.fromEntries(Object.entries(validValues).map(([k, v]) => [`vault.hashicorp.com/${k}`, v])),
      { requiredKeys: [] },
    ),
    // Arbitrary keys from the table with arbitrary (mostly invalid) values.
    fc.dictionary(fc.constantFrom(...tableKeys), fc.string({ maxLength: 12 }), { maxKeys: 2 }),
    fc.constantFrom('true', 'true', 'true', 'false', 'nope'),
    fc.option(fc.constantFrom('native'), { nil: undefined }),
  )
  .map(([valid, random, inject, native]) => ({
    ...valid,
    ...random,
    'vault.hashicorp.com/agent-inject': inject,
    'vault.hashicorp.com/role': 'app',
    ...(native ? { 'vault-injector.dev/native-sidecar': 'true' } : {}),
  }))

const pod = fc
  .record({
    containers: fc.uniqueArray(container, { minLength: 1, maxLength: 3, selector: (c) => c.name }),
    initContainers: fc.uniqueArray(container, { maxLength: 2, selector: (c) => c.name }),
    annotations,
    automount: fc.boolean(),
    podExtra: unknownFields,
  })
  .map(({ containers, initContainers, annotations, automount, podExtra }) => {
    const toContainer = (c: Obj): Obj => ({ name: c.name, image: c.image, env: c.env, ...c.extra })
    const initNames = new Set(containers.map((c) => c.name))
    const spec: Obj = {
      containers: containers.map(toContainer),
      automountServiceAccountToken: automount,
      ...podExtra,
    }
    const inits = initContainers.filter((c) => !initNames.has(c.name)).map(toContainer)
    if (inits.length > 0) spec.initContainers = inits
    return admitted({ metadata: { name: 'p', annotations, managedFields: [{ manager: 'kubectl', operation: 'Update' }] }, spec }, 'team-a')
  })

function apply(doc: JsonObject, ops: fastJsonPatch.Operation[]): Obj {
  return fastJsonPatch.applyPatch(structuredClone(doc), structuredClone(ops), true, false).newDocument
}

t.test('the generator reaches every decision', async (t) => {
  const decisions = new Set(fc.sample(pod, 200).map((p) => injectPod({ pod: p, namespace: 'team-a', settings }).decision))
  t.same([...decisions].sort(), ['deny', 'inject', 'skip'])
})

t.test('never throws, even on arbitrary JSON', async (t) => {
  fc.assert(
    fc.property(fc.anything(), fc.anything(), (podLike, annotationsLike) => {
      injectPod({ pod: podLike as JsonObject, namespace: 'x', settings })
      injectPod({ pod: { metadata: { annotations: annotationsLike }, spec: { containers: podLike } } as JsonObject, namespace: 'x', settings })
    }),
    { numRuns: RUNS },
  )
  t.pass('no exception')
})

t.test('the patch applies to the input and gives the mutated pod', async (t) => {
  fc.assert(
    fc.property(pod, (input) => {
      const r = injectPod({ pod: input, namespace: 'team-a', settings })
      if (r.decision !== 'inject') return r.patch.length === 0
      const patched = apply(input, r.patch)
      return JSON.stringify(patched) === JSON.stringify(r.pod) || fastJsonPatch.compare(patched, r.pod).length === 0
    }),
    { numRuns: RUNS },
  )
  t.pass()
})

t.test('idempotent and deterministic', async (t) => {
  fc.assert(
    fc.property(pod, (input) => {
      const first = injectPod({ pod: input, namespace: 'team-a', settings })
      const again = injectPod({ pod: input, namespace: 'team-a', settings })
      if (JSON.stringify(first) !== JSON.stringify(again)) return false
      if (first.decision !== 'inject') return true
      const second = injectPod({ pod: first.pod, namespace: 'team-a', settings })
      return second.patch.length === 0 && second.decision === 'skip'
    }),
    { numRuns: RUNS },
  )
  t.pass()
})

// Everything of the original is still there: unknown fields, user containers
// (same content, mounts only appended), volumes (ours only appended).
function keepsUserFields(before: Obj, after: Obj): boolean {
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)
  for (const key of Object.keys(before)) if (key !== 'metadata' && key !== 'spec' && !same(before[key], after[key])) return false
  for (const [k, v] of Object.entries(before.metadata.annotations ?? {})) {
    // The status annotation is the injector's own.
    if (k !== 'vault.hashicorp.com/agent-inject-status' && after.metadata.annotations[k] !== v) return false
  }
  if (!same(before.metadata.managedFields, after.metadata.managedFields)) return false
  for (const key of Object.keys(before.spec)) {
    if (['containers', 'initContainers', 'volumes', 'shareProcessNamespace'].includes(key)) continue
    if (!same(before.spec[key], after.spec[key])) return false
  }
  const vols = after.spec.volumes ?? []
  if (!same(before.spec.volumes ?? [], vols.slice(0, (before.spec.volumes ?? []).length))) return false
  for (const field of ['containers', 'initContainers']) {
    const afterByName = new Map<string, Obj>((after.spec[field] ?? []).map((c: Obj) => [c.name, c]))
    for (const c of before.spec[field] ?? []) {
      const a = afterByName.get(c.name)
      if (!a) return false
      for (const key of Object.keys(c)) {
        if (key === 'volumeMounts') {
          if (!same(c.volumeMounts, a.volumeMounts.slice(0, c.volumeMounts.length))) return false
        } else if (!same(c[key], a[key])) return false
      }
    }
  }
  return true
}

t.test('keeps every field it does not own', async (t) => {
  fc.assert(
    fc.property(pod, (input) => {
      const r = injectPod({ pod: input, namespace: 'team-a', settings })
      return keepsUserFields(input, r.pod)
    }),
    { numRuns: RUNS },
  )
  t.pass()
})
