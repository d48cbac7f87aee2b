// One workload document through the engine and the policy, as the webhook
// would judge its pods: shared by inject, explain and test.
import { injectPod } from '../engine/index.ts'
import type { Settings } from '../engine/settings.ts'
import type { EngineResult } from '../engine/types.ts'
import type { Policy } from '../policy/policy.ts'
import type { PolicyVerdict } from '../policy/types.ts'
import { displayName, namespaceOf, podOf, type PodLocation } from './manifests.ts'

export interface EvaluateOptions {
  settings: Settings
  // For documents that name no namespace.
  namespace: string
  policy?: Policy | undefined
  namespaceLabels?: Readonly<Record<string, string>> | undefined
}

export interface Evaluation {
  name: string
  namespace: string
  location: PodLocation
  result: EngineResult
  verdict?: PolicyVerdict
  // The final word, policy included.
  decision: 'inject' | 'skip' | 'deny'
  reason: string
  warnings: string[]
}

export function evaluate(object: unknown, options: EvaluateOptions): Evaluation | undefined {
  const location = podOf(object)
  if (!location) return undefined
  const namespace = namespaceOf(object, options.namespace)
  const ns = { namespace, namespaceLabels: { 'kubernetes.io/metadata.name': namespace, ...(options.namespaceLabels ?? {}) } }
  const result = injectPod({
    pod: location.pod,
    namespace,
    settings: options.settings,
    workloadKind: location.kind,
    annotationDefaults: options.policy?.annotationDefaults(ns) ?? {},
  })
  const evaluation: Evaluation = { name: displayName(object), namespace, location, result, decision: result.decision, reason: result.reason, warnings: [...result.warnings] }
  if (options.policy && result.decision === 'inject') {
    const verdict = options.policy.evaluate({ ...ns, pod: location.pod }, result, location.kind)
    evaluation.verdict = verdict
    evaluation.warnings.push(...verdict.warnings)
    if (verdict.denied !== undefined) {
      evaluation.decision = 'deny'
      evaluation.reason = verdict.denied
    }
  }
  return evaluation
}

// A command-line value that cannot be used (exit 2).
export class UsageError extends Error {}

// "k=v,k2=v2" → labels.
export function parseLabels(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of (text ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = pair.indexOf('=')
    if (at <= 0) throw new UsageError(`--namespace-labels: "${pair}" is not key=value`)
    out[pair.slice(0, at)] = pair.slice(at + 1)
  }
  return out
}
