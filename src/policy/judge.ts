// The one judgement. The webhook's admit, `inject`, `explain`, `review` and
// `test` all call judge(): a pod (or a workload's pod template), its namespace
// and labels, the injector settings and the policy in; the decision, the
// patch, the warnings, the denial with its reason and the audit fields out.
// The policy judges what the agents will really do: the final containers and
// their decoded configuration, after defaults, settings and patches.
import type { Operation } from 'fast-json-patch'
import { injectPod } from '../engine/index.ts'
import { STATUS_ANNOTATION } from '../engine/pod.ts'
import type { Settings } from '../settings.ts'
import type { EngineResult, JsonObject } from '../engine/types.ts'
import { agentContainers, collectFacts, unjudgeableChanges, type Facts } from './effective.ts'
import { findHatches } from './hatches.ts'
import type { PolicyEvaluator, PolicyFinding, PolicyVerdict } from './types.ts'

export interface JudgeInput {
  // The pod as the API server sends it, or a workload's pod template.
  pod: JsonObject
  namespace: string
  // Labels of the namespace, for policy selectors; kubernetes.io/metadata.name is added.
  namespaceLabels?: Readonly<Record<string, string>>
  // The webhook could not know the labels (see NamespaceContext.labelsUnknown).
  labelsUnknown?: boolean
  settings: Settings
  policy?: PolicyEvaluator | undefined
  // The kind of the workload whose template this is (CLI); the webhook reads ownerReferences.
  workloadKind?: string
}

// The audit line's view of a judgement: names and Vault paths, never
// annotation values, template bodies or secret contents; bounded.
export interface AuditFields {
  decision: 'inject' | 'skip' | 'deny'
  reason: string
  role?: string
  secretPaths?: string[]
  injectionType?: string
  policyFindings?: PolicyFinding[]
  warnings: number
}

export interface Judgement {
  decision: 'inject' | 'skip' | 'deny'
  // The skip reason, the denial message, or what was injected.
  reason: string
  // Set when denied: 400 for a pod the injector cannot inject, 403 for a policy refusal.
  code?: 400 | 403
  // The patch to send (empty unless injected).
  patch: Operation[]
  result: EngineResult
  warnings: string[]
  verdict?: PolicyVerdict
  facts?: Facts
  audit: AuditFields
}

const JSON_PATCH_ANNOTATIONS = ['vault.hashicorp.com/agent-json-patch', 'vault.hashicorp.com/agent-init-json-patch']
const MAX_AUDIT_PATHS = 20
const MAX_AUDIT_CHARS = 120

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// Denial messages quote the offending value for the user who sent it; the log
// keeps the annotation name and drops the value, since a mistaken annotation
// may hold a secret.
export function redactValues(text: string): string {
  return text.replace(/"(?:[^"\\]|\\.)*"…?/g, '"(value not logged)"')
}

function annotationsOf(pod: JsonObject): JsonObject {
  const metadata = isObject(pod.metadata) ? pod.metadata : {}
  return isObject(metadata.annotations) ? metadata.annotations : {}
}

export function isJobPod(pod: JsonObject, workloadKind?: string): boolean {
  if (workloadKind === 'Job' || workloadKind === 'CronJob') return true
  const owners = isObject(pod.metadata) ? pod.metadata.ownerReferences : undefined
  return Array.isArray(owners) && owners.some((o) => isObject(o) && o.kind === 'Job')
}

// What the injector itself would add to this pod, without the pod's own
// patches and afresh: the yardstick for what a patch (or a pod that arrived
// with agent containers) changed. Needed only when there may be a difference.
function reference(input: JudgeInput, defaults: Record<string, string>): JsonObject | undefined {
  const annotations = annotationsOf(input.pod)
  const patched = JSON_PATCH_ANNOTATIONS.some((k) => typeof annotations[k] === 'string' && annotations[k] !== '' && annotations[k] !== defaults[k])
  const arrivedInjected = annotations[STATUS_ANNOTATION] !== undefined
  if (!patched && !arrivedInjected) return undefined
  const pod = { ...input.pod, metadata: { ...(input.pod.metadata as JsonObject), annotations: { ...annotations } } }
  const copy = pod.metadata.annotations as JsonObject
  for (const k of JSON_PATCH_ANNOTATIONS) delete copy[k]
  // Any status other than "injected" asks the engine for a fresh injection.
  if (arrivedInjected) copy[STATUS_ANNOTATION] = 'update'
  const again = injectPod({ pod, namespace: input.namespace, settings: input.settings, annotationDefaults: defaults, ...(input.workloadKind ? { workloadKind: input.workloadKind } : {}) })
  return again.decision === 'inject' ? again.pod : {}
}

function bounded(paths: string[]): string[] {
  const unique = [...new Set(paths)]
  const out = unique.slice(0, MAX_AUDIT_PATHS).map(short)
  if (unique.length > MAX_AUDIT_PATHS) out.push(`(${unique.length - MAX_AUDIT_PATHS} more)`)
  return out
}

function short(value: string): string {
  return value.length > MAX_AUDIT_CHARS ? value.slice(0, MAX_AUDIT_CHARS) + '…' : value
}

export function judge(input: JudgeInput): Judgement {
  const namespaceLabels = { 'kubernetes.io/metadata.name': input.namespace, ...(input.namespaceLabels ?? {}) }
  const ns = { namespace: input.namespace, namespaceLabels, ...(input.labelsUnknown ? { labelsUnknown: true } : {}) }
  const policy = input.policy?.applies(ns) ? input.policy : undefined
  const defaults = policy?.annotationDefaults(ns) ?? {}
  const result = injectPod({ pod: input.pod, namespace: input.namespace, settings: input.settings, annotationDefaults: defaults, ...(input.workloadKind ? { workloadKind: input.workloadKind } : {}) })
  const warnings = [...result.warnings]
  const judgement: Judgement = {
    decision: result.decision,
    reason: result.reason,
    patch: result.decision === 'inject' ? result.patch : [],
    result,
    warnings,
    audit: { decision: result.decision, reason: redactValues(result.reason), warnings: 0 },
  }
  if (result.decision === 'deny') {
    judgement.code = 400
    judgement.audit.warnings = warnings.length
    return judgement
  }
  if (result.agent) {
    judgement.audit.role = short(result.agent.role)
    judgement.audit.secretPaths = bounded(result.agent.secrets.flatMap((s) => s.pathsRead))
    judgement.audit.injectionType = result.agent.injectionType
  }
  // A pod that arrived injected (a reinvocation, a manifest injected offline,
  // or a pod that claims to be) is judged on the agents it carries; a pod that
  // opts out is not the injector's. Without a
  // policy nothing is judged, and the audit line names what the annotations ask for.
  if (policy && (result.decision === 'inject' || (annotationsOf(input.pod)[STATUS_ANNOTATION] !== undefined && agentContainers(result.pod).length > 0))) {
    const facts = collectFacts(result.pod)
    judgement.facts = facts
    // With a policy, the audit line names what the agents really use.
    const roles = facts.roles.filter((r) => r !== '')
    if (roles.length > 0) judgement.audit.role = short(roles.join(','))
    judgement.audit.secretPaths = bounded(facts.secretPaths.map((p) => p.path))
    const yardstick = reference(input, defaults)
    if (yardstick !== undefined) facts.unjudgeable.push(...unjudgeableChanges(result.pod, yardstick))
    const verdict = policy.evaluate({
      ...ns,
      final: result.pod,
      isJob: isJobPod(input.pod, input.workloadKind),
      facts,
      hatches: findHatches(input.pod, defaults, facts, result.pod),
    })
    judgement.verdict = verdict
    judgement.audit.policyFindings = verdict.findings
    warnings.push(...verdict.warnings)
    if (verdict.denied !== undefined) {
      judgement.decision = 'deny'
      judgement.reason = verdict.denied
      judgement.code = 403
      judgement.patch = []
      judgement.audit.decision = 'deny'
      judgement.audit.reason = redactValues(verdict.denied)
    }
  }
  judgement.audit.warnings = warnings.length
  return judgement
}
