// vault-injector against HashiCorp's own vault-k8s handler, pod by pod.
//
// A seeded generator (test/helpers/pod-generator.ts) makes realistic pods with
// random annotation combinations and invalid values; both injectors answer the
// same AdmissionReviews (vault-k8s in batch mode, ours through admit(), the
// webhook's own function); then the pods vault-k8s patched are admitted again,
// as they are (a reinvocation, a Velero restore, a migration between
// injectors) and with the status "update". test/helpers/differential.ts
// normalises only what the README documents.
//
//   DIFF_PODS=5000 DIFF_SEED=123 npx tap test/e2e/differential.e2e.ts
//
// Without DIFF_SEED a new seed is drawn and printed: rerun with it to repeat.
//
// vault-k8s 1.6.2 is the newest version the Go module proxy serves; the
// reference is 1.7.6. What changed between them that matters here
// (vault-k8s CHANGELOG 1.7.0–1.7.6 and the 1.7.6 source):
// - the default agent image (1.18.5 → 2.0.4): both run with ours, -vault-image;
// - template-lease-renewal-threshold (added in 1.7): 1.6.2 ignores it, so our
//   template_config.lease_renewal_threshold is left out of the comparison
//   (differential.ts, decodeConfig);
// - nothing else in the annotation handling, the agent containers or the
//   configuration changed between the two (the 1.7 releases are dependency,
//   Go and default-version updates).
import t from 'tap'
import { admit } from '../../src/webhook/admission.ts'
import { defaultSettings } from '../../src/settings.ts'
import { judge, sideFromAnswer, STATUS, apiServerProblems, type Side } from '../helpers/differential.ts'
import { admissionReview, generatePod, rng, type GeneratedPod } from '../helpers/pod-generator.ts'
import { vaultK8sBatch, vaultK8sBinary } from '../helpers/vault-k8s.ts'

type Obj = Record<string, any>

const PODS = Number(process.env.DIFF_PODS ?? 300)
const SEED = process.env.DIFF_SEED !== undefined ? Number(process.env.DIFF_SEED) : Math.floor(Math.random() * 2 ** 31)
const settings = defaultSettings()
const FLAGS = [`-vault-address=${settings.vaultAddress}`, `-vault-image=${settings.vaultImage}`]

interface Case {
  generated: GeneratedPod
  label: string
}

function ours(c: Case, uid: string): Side {
  const outcome = admit(admissionReview(uid, c.generated), { settings })
  return sideFromAnswer(c.generated.pod, outcome.body as Obj)
}

async function run(binary: string, cases: Case[]): Promise<{ vk: Side; ours: Side }[]> {
  const reviews = cases.map((c, i) => admissionReview(`uid-${i}`, c.generated))
  const answers = await vaultK8sBatch(binary, reviews, FLAGS)
  return cases.map((c, i) => ({ vk: sideFromAnswer(c.generated.pod, answers[i]!), ours: ours(c, `uid-${i}`) }))
}

const binary = vaultK8sBinary()
if (!binary) {
  t.fail('SKIPPED LOUDLY: no vault-k8s binary; run `bash test/e2e/build.sh vault-k8s` (test/e2e/run.sh builds it)')
} else {
  t.test(`${PODS} generated pods, seed ${SEED}`, async (t) => {
    t.comment(`differential seed ${SEED} (DIFF_SEED=${SEED} DIFF_PODS=${PODS} to repeat)`)
    const r = rng(SEED)
    const fresh: Case[] = []
    for (let i = 0; i < PODS; i++) fresh.push({ generated: generatePod(r), label: `pod ${i}` })
    // A pod whose annotations were copied from an injected one (status
    // "injected") but that has none of the injected parts.
    for (let i = 0; i < Math.max(1, PODS / 50); i++) {
      const g = generatePod(r)
      g.pod.metadata.annotations[STATUS] = 'injected'
      g.tags.push('copied-status')
      fresh.push({ generated: g, label: `copied-status ${i}` })
    }
    const first = await run(binary, fresh)

    const again: Case[] = []
    first.forEach((result, i) => {
      if (result.vk.outcome !== 'patched' || apiServerProblems(result.vk.pod!).length > 0) return
      const base = fresh[i]!.generated
      again.push({ generated: { ...base, pod: structuredClone(result.vk.pod!), tags: [...base.tags, 'readmit'] }, label: `${fresh[i]!.label} re-admitted` })
      if (r.chance(0.3)) {
        const pod = structuredClone(result.vk.pod!)
        pod.metadata.annotations[STATUS] = 'update'
        again.push({ generated: { ...base, pod, tags: [...base.tags, 'readmit-update'] }, label: `${fresh[i]!.label} re-admitted with status update` })
      }
    })
    const second = await run(binary, again)

    const cases = [...fresh, ...again]
    const results = [...first, ...second]
    const differences: string[] = []
    const notes = new Map<string, number>()
    results.forEach((result, i) => {
      const verdict = judge(result.vk, result.ours, cases[i]!.generated.tags)
      if (verdict.same) {
        notes.set(verdict.note, (notes.get(verdict.note) ?? 0) + 1)
      } else {
        const c = cases[i]!
        differences.push(`${c.label} [${c.generated.tags.join(' ')}]: ${verdict.difference}\n    annotations: ${JSON.stringify(c.generated.pod.metadata.annotations)}`)
      }
    })
    for (const [note, count] of [...notes].sort((a, b) => b[1] - a[1])) t.comment(`${count} × ${note}`)
    t.comment(`${results.length} admissions (${fresh.length} fresh, ${again.length} re-admitted), ${differences.length} differences`)
    const kinds = new Map<string, number>()
    for (const d of differences) {
      const kind = d.replace(/^[^\]]*\]: /, '').replace(/\/\d+/g, '/N').replace(/(:| has| vs).*/s, '')
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
    }
    for (const [kind, count] of [...kinds].sort((a, b) => b[1] - a[1])) t.comment(`difference ${count} × ${kind}`)
    for (const d of differences.slice(0, Number(process.env.DIFF_SHOW ?? 10))) t.comment(d)
    t.equal(differences.length, 0, `no undocumented difference (seed ${SEED})`)
  })
}
