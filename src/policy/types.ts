// The seam between the judgement and the policy. The engine stays pure;
// policy runs around it: namespace defaults go in, the verdict on what the
// agents will really do comes out.
import type { JsonObject } from '../engine/types.ts'
import type { Facts } from './effective.ts'
import type { HatchFinding } from './hatches.ts'

export interface NamespaceContext {
  namespace: string
  namespaceLabels: Readonly<Record<string, string>>
  // The webhook has not seen the namespace (just created, the watch not yet
  // synced, or no cluster to read labels from). Rules that select by label
  // then restrict it (fail closed) but give it no defaults.
  labelsUnknown?: boolean
}

// One injected pod, as the policy judges it.
export interface PolicySubject extends NamespaceContext {
  // The pod after injection (or as it arrived, when it was injected before).
  final: JsonObject
  // Owned by a Job (ownerReferences, or a Job/CronJob template in the CLI).
  isJob: boolean
  facts: Facts
  hatches: HatchFinding[]
}

export interface PolicyFinding {
  rule: string
  mode: 'enforce' | 'warn' | 'audit'
  message: string
}

export interface PolicyVerdict {
  // Set when an `enforce` rule fails: the denial message names the rule and value.
  denied?: string
  // `warn` findings: returned as AdmissionResponse warnings.
  warnings: string[]
  // Every finding (bounded), for the audit log line.
  findings: PolicyFinding[]
}

export interface PolicyEvaluator {
  readonly name: string
  // Annotation defaults for pods in this namespace (pod annotations win).
  annotationDefaults(ctx: NamespaceContext): Record<string, string>
  // Whether any rule applies here (nothing to judge otherwise).
  applies(ctx: NamespaceContext): boolean
  evaluate(subject: PolicySubject): PolicyVerdict
  // Whether a rule selects namespaces by label (then the webhook is ready only
  // once it knows the namespaces' labels).
  selectsByLabel?(): boolean
}
