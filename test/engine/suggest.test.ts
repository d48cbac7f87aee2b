// Did you mean: unknown annotations under our prefixes get the closest table
// name, in the engine's warnings, whether or not the pod is injected.
import t from 'tap'
import { injectPod } from '../../src/engine/index.ts'
import { defaultSettings } from '../../src/settings.ts'
import { editDistance, suggestAnnotation, unknownAnnotationWarnings } from '../../src/engine/suggest.ts'
import { admitted, annotatedPod } from '../helpers/pods.ts'

const settings = defaultSettings()

t.test('the closest table name, prefix either of ours', async (t) => {
  const cases: [string, string | undefined][] = [
    ['vault.hashicorp.com/agent-injet', 'vault.hashicorp.com/agent-inject'],
    ['vault.hashicorp.com/agent-inject-secert-db', 'vault.hashicorp.com/agent-inject-secret-db'],
    ['vault.hashicorp.com/agent-inject-templat-db', 'vault.hashicorp.com/agent-inject-template-db'],
    ['vault.hashicorp.com/agent-pre-populate-onyl', 'vault.hashicorp.com/agent-pre-populate-only'],
    ['vault.hashicorp.com/roles', 'vault.hashicorp.com/role'],
    ['vault.hashicorp.com/auth-confg-role', 'vault.hashicorp.com/auth-config-role'],
    ['vault.hashicorp.com/native-sidecar', 'vault-injector.dev/native-sidecar'],
    ['vault-injector.dev/token-audiance', 'vault-injector.dev/token-audience'],
    ['vault.hashicorp.com/something-else-entirely', undefined],
    ['vault.hashicorp.com/ro', undefined],
    ['example.com/agent-injet', undefined],
  ]
  for (const [key, want] of cases) t.equal(suggestAnnotation(key), want, key)
  t.equal(editDistance('kitten', 'sitting', 5), 3)
  t.equal(editDistance('abc', 'abcdef'), 3, 'gives up past the limit')
})

t.test('a typo in the trigger: the pod is skipped, with a warning that names the annotation meant', async (t) => {
  const pod = admitted({ metadata: { name: 'web', annotations: { 'vault.hashicorp.com/agent-injet': 'true', 'vault.hashicorp.com/role': 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } }, 'team-a')
  const r = injectPod({ pod, namespace: 'team-a', settings })
  t.equal(r.decision, 'skip')
  t.same(r.warnings, ['vault.hashicorp.com/agent-injet: unknown annotation, ignored; did you mean vault.hashicorp.com/agent-inject?'])
  t.same(r.patch, [])
})

t.test('an injected pod: every unknown annotation warned about, with a suggestion where one is close', async (t) => {
  const r = injectPod({ pod: annotatedPod({ 'vault.hashicorp.com/agent-inject-secert-db': 'secret/data/db', 'vault.hashicorp.com/zzz-unrelated-thing': 'x' }), namespace: 'team-a', settings })
  t.equal(r.decision, 'inject')
  t.same(r.warnings.filter((w) => w.includes('unknown annotation')), [
    'vault.hashicorp.com/agent-inject-secert-db: unknown annotation, ignored; did you mean vault.hashicorp.com/agent-inject-secret-db?',
    'vault.hashicorp.com/zzz-unrelated-thing: unknown annotation, ignored',
  ])
})

t.test('suggestions are bounded: thousands of odd keys stay cheap and each still gets its warning', async (t) => {
  const annotations = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`vault.hashicorp.com/agent-inject-secrt-${i}`, 'x']))
  const warnings = unknownAnnotationWarnings(annotations)
  t.equal(warnings.length, 2000)
  t.equal(warnings.filter((w) => w.includes('did you mean')).length, 20, 'suggestions for the first 20 only')
})
