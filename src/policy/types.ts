// The seam between the webhook (or CLI) and the policy. The engine stays pure;
// policy runs around it: namespace defaults go in, the verdict comes out.
import type { EngineResult, JsonObject } from '../engine/types.ts'

export interface PolicyContext {
  namespace: string
  namespaceLabels: Readonly<Record<string, string>>
  // The pod as received (before mutation).
  pod: JsonObject
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
  // Every finding, for the audit log line.
  findings: PolicyFinding[]
}

export interface PolicyEvaluator {
  // Annotation defaults for pods in this namespace (pod annotations win).
  annotationDefaults(ctx: Omit<PolicyContext, 'pod'>): Record<string, string>
  // Judge an engine result (only results with decision 'inject' need checks).
  evaluate(ctx: PolicyContext, result: EngineResult): PolicyVerdict
}
