// Keys that name Object.prototype members ("__proto__", "constructor",
// "toString") are plain keys in JSON. A pod may carry them anywhere: in labels,
// annotations, unknown fields, secret names. The engine must treat them as
// data: no prototype is changed, nothing is lost, the patch applies with
// validation, and a second run gives no patch.
import t from 'tap'
import fastJsonPatch from 'fast-json-patch'
import { injectPod } from '../../src/engine/index.ts'
import { defaultSettings } from '../../src/settings.ts'
import type { JsonObject } from '../../src/engine/types.ts'
import { annotatedPod } from '../helpers/pods.ts'

const settings = defaultSettings()
const NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']

// JSON text, parsed: the only way "__proto__" becomes an own key, as it does
// when the API server's request body is parsed.
function parsed(value: unknown): JsonObject {
  return JSON.parse(JSON.stringify(value).replace(/proto-key/g, '__proto__')) as JsonObject
}

function podWithPrototypeKeys(): JsonObject {
  const pod = annotatedPod({
    'vault.hashicorp.com/agent-inject-secret-constructor': 'secret/data/app/a',
    'vault.hashicorp.com/agent-inject-secret-toString': 'secret/data/app/b',
    'vault.hashicorp.com/agent-inject-template-toString': '{{ with secret "secret/data/app/b" }}{{ .Data.data.x }}{{ end }}',
  }) as Record<string, any>
  const keyed = (value: unknown): Record<string, unknown> => Object.fromEntries(NAMES.map((n) => [n === '__proto__' ? 'proto-key' : n, value]))
  pod.metadata.labels = keyed('label')
  Object.assign(pod.metadata.annotations, keyed('note'))
  pod.spec.nodeSelector = keyed('node')
  Object.assign(pod.spec, { 'proto-key': { polluted: true }, constructor: { prototype: { polluted: true } } })
  Object.assign(pod.spec.containers[0], keyed({ polluted: true }))
  pod.spec.containers[0].env = [{ name: 'proto-key', value: 'x' }, { name: 'constructor', value: 'y' }]
  return parsed(pod)
}

t.test('prototype-named keys anywhere in the pod are data, not prototypes', async (t) => {
  const input = podWithPrototypeKeys()
  t.ok(Object.hasOwn(input.spec as object, '__proto__'), 'the fixture really has an own "__proto__" key')
  const before = JSON.stringify(input)
  const result = injectPod({ pod: input, namespace: 'team-a', settings })
  t.equal(result.decision, 'inject', result.reason)
  t.equal(JSON.stringify(input), before, 'the input is not changed')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is untouched')

  const secretNames = result.agent?.secrets.map((s) => s.name).sort()
  // Lower-cased, as vault-k8s names secret files.
  t.same(secretNames, ['constructor', 'tostring'], 'secret names that name prototype members are secrets like any other')

  const patched = fastJsonPatch.applyPatch(JSON.parse(before), result.patch, true).newDocument
  t.equal(JSON.stringify(patched), JSON.stringify(result.pod), 'the patch applies, with validation, and gives the result')
  for (const name of NAMES) {
    t.ok(Object.hasOwn((result.pod.metadata as any).labels, name), `label ${name} kept`)
    t.ok(Object.hasOwn((result.pod.spec as any).nodeSelector, name), `nodeSelector ${name} kept`)
  }
  const again = injectPod({ pod: result.pod, namespace: 'team-a', settings })
  t.same(again.patch, [], 'a second run gives no patch')
})

t.test('a prototype-named annotation under our prefixes is reported, not trusted', async (t) => {
  const pod = parsed(annotatedPod({ 'vault.hashicorp.com/proto-key': 'x', 'vault.hashicorp.com/constructor': 'y' }))
  const result = injectPod({ pod, namespace: 'team-a', settings })
  t.equal(result.decision, 'inject')
  t.match(result.warnings.join('\n'), /vault\.hashicorp\.com\/constructor: unknown annotation, ignored/)
  t.match(result.warnings.join('\n'), /vault\.hashicorp\.com\/__proto__: unknown annotation, ignored/)
})
