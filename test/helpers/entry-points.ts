// One pod through every entry point that judges: the webhook's admit (which
// `review` answers with), `inject`, `explain` and `test`, in process. Each
// must reach the same decision with the same reason.
import fastJsonPatch from 'fast-json-patch'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { defaultSettings, type Settings } from '../../src/settings.ts'
import type { JsonObject } from '../../src/engine/types.ts'
import { evaluate } from '../../src/cli/evaluate.ts'
import { explainOne } from '../../src/cli/explain.ts'
import { injectDocuments } from '../../src/cli/inject.ts'
import { runSuites } from '../../src/cli/test-suite.ts'
import { parsePolicy } from '../../src/policy/load.ts'
import { admit } from '../../src/webhook/admission.ts'

export interface Seen {
  decision: 'inject' | 'skip' | 'deny'
  reason: string
}

export interface Everywhere {
  webhook: Seen
  inject: Seen
  explain: Seen
  test: Seen
  // The injected pod, as the webhook's patch leaves it (when injected).
  patched?: JsonObject
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

export function everyEntryPoint(pod: JsonObject, policyYaml: string, namespace = 'team-a', settings: Settings = defaultSettings()): Everywhere {
  const policy = parsePolicy(policyYaml, 'policy.yaml')
  const options = { settings, namespace, policy, namespaceLabels: {} }
  const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace, operation: 'CREATE', object: structuredClone(pod) } }
  // The webhook knows the namespace's labels (none beyond its name), as the CLI is told them.
  const answer = admit(review, { settings, policy, namespaceLabels: () => ({}) }).body.response as { allowed: boolean; patch?: string; status?: { message: string } }
  const webhook: Seen = !answer.allowed ? { decision: 'deny', reason: answer.status!.message } : { decision: answer.patch ? 'inject' : 'skip', reason: '' }
  let patched: JsonObject | undefined
  if (answer.patch) {
    const ops = JSON.parse(Buffer.from(answer.patch, 'base64').toString())
    patched = structuredClone(pod)
    patched = fastJsonPatch.applyPatch(patched, ops, true, false).newDocument as JsonObject
  }

  const outcome = injectDocuments([{ origin: 'pod.yaml#1', index: 1, object: structuredClone(pod) }], options)
  const denial = outcome.diagnostics.find((d) => / denied: /.test(d))
  const inject: Seen = denial ? { decision: 'deny', reason: denial.replace(/^.*? denied: /, '') } : { decision: outcome.changed.size > 0 ? 'inject' : 'skip', reason: '' }

  const e = evaluate(structuredClone(pod), options)!
  const text = explainOne(e)
  const head = text.split('\n')[0]!
  const explain: Seen = / DENIED$/.test(head) ? { decision: 'deny', reason: /\n {2}why: (.*)/.exec(text)![1]! } : { decision: / INJECTED$/.test(head) ? 'inject' : 'skip', reason: '' }

  const dir = mkdtempSync(join(tmpdir(), 'entry-'))
  writeFileSync(join(dir, 'policy.yaml'), policyYaml)
  writeFileSync(join(dir, 'pod.yaml'), stringify(pod))
  const expect = webhook.decision === 'deny' ? { denied: `^${escape(webhook.reason)}$` } : { injected: webhook.decision === 'inject' }
  writeFileSync(join(dir, 'injector-test.yaml'), stringify({ apiVersion: 'vault-injector.dev/v1alpha1', kind: 'InjectorTest', policy: 'policy.yaml', namespace, cases: [{ name: 'case', manifests: ['pod.yaml'], expect }] }))
  const failures = runSuites(dir)[0]!.failures.filter((f) => !/not idempotent|not deterministic|not a valid Pod/.test(f))
  const test: Seen = failures.length === 0 ? webhook : { decision: 'skip', reason: `test disagrees: ${failures.join('; ')}` }
  return { webhook, inject, explain, test, ...(patched ? { patched } : {}) }
}
