// One workload document through the engine and the policy, as the webhook
// would judge its pods: shared by inject, explain and test.
import { UsageError } from '../errors.ts'
import type { Settings } from '../settings.ts'
import type { EngineResult, JsonObject } from '../engine/types.ts'
import { isUnknownAnnotationWarning } from '../engine/suggest.ts'
import { judge, type Judgement } from '../policy/judge.ts'
import type { PolicyEvaluator, PolicyVerdict } from '../policy/types.ts'
import { evaluateClass, isSecretProviderClass, planAsResult, type ClassEvaluation } from '../csi/evaluate.ts'
import { displayName, namespaceOf, podOf, type PodLocation } from './manifests.ts'

export interface EvaluateOptions {
  settings: Settings
  // For documents that name no namespace.
  namespace: string
  policy?: PolicyEvaluator | undefined
  namespaceLabels?: Readonly<Record<string, string>> | undefined
  // --strict: an unknown annotation under our prefixes denies the pod (a typo
  // caught in CI rather than an agent silently missing a setting).
  strict?: boolean | undefined
}

export interface Evaluation {
  name: string
  namespace: string
  location: PodLocation
  result: EngineResult
  judgement: Judgement
  verdict?: PolicyVerdict
  // The final word, policy included.
  decision: 'inject' | 'skip' | 'deny'
  reason: string
  warnings: string[]
  // Set for a SecretProviderClass: how a CSI mount of it would be judged.
  csi?: ClassEvaluation
}

// The workload's pod template through the one judgement, as the webhook
// would judge the pods it creates.
export function evaluate(object: unknown, options: EvaluateOptions): Evaluation | undefined {
  if (isSecretProviderClass(object)) return evaluateSecretProviderClass(object, options)
  const location = podOf(object)
  if (!location) return undefined
  const namespace = namespaceOf(object, options.namespace)
  const j = judge({ pod: location.pod, namespace, namespaceLabels: options.namespaceLabels ?? {}, settings: options.settings, policy: options.policy, workloadKind: location.kind })
  const unknown = options.strict ? j.warnings.filter(isUnknownAnnotationWarning) : []
  if (unknown.length > 0) {
    return { name: displayName(object), namespace, location, result: j.result, judgement: j, ...(j.verdict ? { verdict: j.verdict } : {}), decision: 'deny', reason: `--strict: ${unknown.map((w) => w.replace(/: unknown annotation, ignored/, ' is not a known annotation')).join('; ')}`, warnings: j.warnings }
  }
  return {
    name: displayName(object),
    namespace,
    location,
    result: j.result,
    judgement: j,
    ...(j.verdict ? { verdict: j.verdict } : {}),
    decision: j.decision,
    reason: j.reason,
    warnings: j.warnings,
  }
}

// A SecretProviderClass, judged by the same policy as a mount of it (src/csi/).
// Its engine result is a skip: there is no pod to inject.
function evaluateSecretProviderClass(object: JsonObject, options: EvaluateOptions): Evaluation {
  const namespace = namespaceOf(object, options.namespace)
  const labels = { 'kubernetes.io/metadata.name': namespace, ...(options.namespaceLabels ?? {}) }
  const csi = evaluateClass(object, namespace, options.settings, options.policy, labels)
  const result: EngineResult = { decision: 'skip', reason: csi.reason, pod: {}, patch: [], warnings: [], ...(csi.plan ? { agent: planAsResult(csi.plan).agent! } : {}) }
  const location: PodLocation = { kind: 'SecretProviderClass', pod: {}, replace: () => {} }
  const warnings = [...(csi.verdict?.warnings ?? [])]
  const judgement: Judgement = {
    decision: csi.decision,
    reason: csi.reason,
    ...(csi.decision === 'deny' ? { code: csi.verdict ? 403 : 400 } : {}),
    patch: [],
    result,
    warnings,
    ...(csi.verdict ? { verdict: csi.verdict } : {}),
    audit: { decision: csi.decision, reason: csi.reason, warnings: warnings.length, ...(csi.plan ? { role: csi.plan.roleName, secretPaths: [...new Set(result.agent!.secrets.map((x) => x.path))], injectionType: 'csi' } : {}), ...(csi.verdict ? { policyFindings: csi.verdict.findings } : {}) },
  }
  return { name: displayName(object), namespace, location, result, judgement, decision: csi.decision, reason: csi.reason, warnings, csi, ...(csi.verdict ? { verdict: csi.verdict } : {}) }
}

// A command-line value that cannot be used (exit 2).

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
