// Properties over the differential test's pod generator (realistic pods with
// random vault.hashicorp.com/ annotations, test/helpers/pod-generator.ts).
// vault-k8s's own output is admitted again in test/e2e/differential.e2e.ts,
// which needs its Go binary; here, our own output.
//   PROPERTY_RUNS=5000 PROPERTY_SEED=7 npx tap test/engine/generated-pods.test.ts
import t from 'tap'
import fastJsonPatch from 'fast-json-patch'
import { injectPod } from '../../src/engine/index.ts'
import { defaultSettings } from '../../src/settings.ts'
import type { JsonObject } from '../../src/engine/types.ts'
import { apiServerProblems } from '../helpers/differential.ts'
import { generatePod, rng } from '../helpers/pod-generator.ts'

const RUNS = Number(process.env.PROPERTY_RUNS ?? 300)
const SEED = process.env.PROPERTY_SEED !== undefined ? Number(process.env.PROPERTY_SEED) : Math.floor(Math.random() * 2 ** 31)
const settings = defaultSettings()
const STATUS = 'vault.hashicorp.com/agent-inject-status'

t.test(`${RUNS} generated pods, seed ${SEED}`, async (t) => {
  t.comment(`PROPERTY_SEED=${SEED} to repeat`)
  const r = rng(SEED)
  const failures: string[] = []
  let injected = 0
  for (let i = 0; i < RUNS && failures.length < 5; i++) {
    const { pod, namespace } = generatePod(r)
    const first = injectPod({ pod, namespace, settings })
    if (first.decision !== 'inject') continue
    injected++
    const patched = fastJsonPatch.applyPatch(structuredClone(pod), structuredClone(first.patch), true, false).newDocument as JsonObject
    const problems = apiServerProblems(patched)
    if (problems.length > 0) failures.push(`pod ${i}: the API server would refuse our pod: ${problems.join('; ')}`)
    // Admitting our output again changes nothing (reinvocation).
    const again = injectPod({ pod: patched, namespace, settings })
    if (again.patch.length > 0 || again.decision !== 'skip') failures.push(`pod ${i}: admitted again: ${again.decision} ${JSON.stringify(again.patch).slice(0, 300)}`)
    // Status "update" strips and injects again: the same pod.
    const update = structuredClone(patched) as Record<string, any>
    update.metadata.annotations[STATUS] = 'update'
    const redo = injectPod({ pod: update, namespace, settings })
    if (redo.decision !== 'inject' || fastJsonPatch.compare(patched, redo.pod).length > 0) failures.push(`pod ${i}: re-injected on "update" differs: ${JSON.stringify(fastJsonPatch.compare(patched, redo.pod)).slice(0, 300)}`)
  }
  t.comment(`${injected} of ${RUNS} injected`)
  t.ok(injected > RUNS / 3, 'most generated pods are injected')
  t.same(failures, [], `seed ${SEED}`)
})
