// Fuzzing the real server over HTTPS with fast-check: whole AdmissionReview
// bodies (any JSON, broken JSON, reviews with random parts) and annotation
// values (every annotation of the table, hostile values). The answer is always
// 200 or 4xx, within a bounded time, never a 5xx or a crash, and a good
// review is answered afterwards.
//
// Short by default, for CI; FUZZ_RUNS=2000 npx tap test/webhook/fuzz.test.ts
// runs longer.
import t from 'tap'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import { ANNOTATIONS, fullName } from '../../src/engine/annotations.ts'
import { annotatedPod } from '../helpers/pods.ts'
import { startServer, type TestServer } from '../helpers/server.ts'

type Obj = Record<string, any>
const RUNS = Number(process.env.FUZZ_RUNS ?? 60)
// Per review; far above what any answer takes, far below the API server's wait.
const ANSWER_WITHIN_MS = 5_000
const example = readFileSync(new URL('../../examples/admission-review.json', import.meta.url), 'utf8')

let s: TestServer
let agent: https.Agent
t.before(async () => {
  s = await startServer()
  agent = new https.Agent({ keepAlive: true, maxSockets: 4 })
})
t.teardown(async () => {
  agent.destroy()
  await s.server.close()
})

async function answer(body: string | Buffer): Promise<number> {
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ANSWER_WITHIN_MS} ms`)), ANSWER_WITHIN_MS).unref())
  const r = await Promise.race([s.request('/mutate', { body, agent }), timer])
  return r.status
}

const ok = (status: number): boolean => status === 200 || (status >= 400 && status < 500)

function review(request: Obj): string {
  return JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request })
}

const nested = fc.integer({ min: 1, max: 20_000 }).map((n) => '['.repeat(n) + ']'.repeat(n))
const hostileString = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 100 }),
  fc.json({ maxDepth: 6 }),
  nested,
  fc.constantFrom('', 'null', '[]', '{}', 'true', '-1', '1e309', '0x10', '../../etc/passwd', "'; rm -rf / #", '$(id)', '{{ .Data }}', '\u0000', '\ud800'),
  fc.array(fc.record({ op: fc.constantFrom('add', 'copy', 'move', 'remove', 'replace', 'test'), path: fc.constantFrom('/env', '/x', '/env/-', '/', ''), from: fc.constantFrom('/env', '/', '/x'), value: fc.jsonValue({ maxDepth: 4 }) }), { maxLength: 30 }).map((ops) => JSON.stringify(ops)),
)
const annotationName = fc.constantFrom(...ANNOTATIONS.map((a) => fullName(a)).filter((name) => !name.endsWith('-')), 'vault.hashicorp.com/agent-inject-secret-x', 'vault.hashicorp.com/agent-inject-template-x', 'vault.hashicorp.com/agent-telemetry-x')

t.test('whole bodies: any JSON, broken JSON, reviews with random parts', async (t) => {
  const body = fc.oneof(
    fc.jsonValue({ maxDepth: 8 }).map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 300 }),
    fc.record({ uid: fc.oneof(fc.string(), fc.jsonValue()), kind: fc.oneof(fc.constant({ group: '', version: 'v1', kind: 'Pod' }), fc.jsonValue()), namespace: fc.oneof(fc.string(), fc.jsonValue()), operation: fc.oneof(fc.constant('CREATE'), fc.jsonValue()), object: fc.oneof(fc.jsonValue({ maxDepth: 10 }), fc.constant(annotatedPod({}))), dryRun: fc.jsonValue() }, { requiredKeys: [] }).map(review),
    nested.map((deep) => review({ uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'a', object: { metadata: { name: 'p' }, spec: { x: '@' } } }).replace('"@"', deep)),
  )
  await fc.assert(fc.asyncProperty(body, async (b) => ok(await answer(b))), { numRuns: RUNS })
  t.equal(await answer(example), 200, 'a good review is answered afterwards')
})

t.test('annotation values: every annotation, hostile values', async (t) => {
  const annotations = fc.dictionary(annotationName, hostileString, { minKeys: 1, maxKeys: 6 })
  await fc.assert(
    fc.asyncProperty(annotations, async (values) => {
      const status = await answer(review({ uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'team-a', object: annotatedPod(values) }))
      return status === 200
    }),
    { numRuns: RUNS },
  )
  t.equal(await answer(example), 200, 'a good review is answered afterwards')
  t.notOk(s.logs.some((l) => l.level >= 50), 'nothing logged as an internal error')
})
