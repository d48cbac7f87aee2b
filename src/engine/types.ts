// The engine's public shapes. The engine is pure: raw pod JSON and settings in,
// a decision, the mutated pod and the RFC 6902 patch out.
import type { Operation } from 'fast-json-patch'
import type { EngineSettings } from './settings.ts'

export type JsonObject = Record<string, unknown>

export interface EngineInput {
  // The raw pod as the API server sends it, or a pod template ({metadata, spec}).
  pod: JsonObject
  // The namespace the pod is created in (the AdmissionRequest's namespace).
  namespace: string
  settings: EngineSettings
  // Annotation defaults for this namespace (from policy). The pod's own
  // annotations win; then these; then the injector-wide settings.
  annotationDefaults?: Readonly<Record<string, string>>
  // Kind of the workload that owns the pod, when known without the pod's
  // ownerReferences (the CLI reading a Job or CronJob template).
  workloadKind?: string
}

export type Decision = 'inject' | 'skip' | 'deny'

// vault-k8s's metric label values.
export type InjectionType = 'init_and_sidecar' | 'init_only' | 'sidecar_only'

export interface SecretSummary {
  name: string
  // Vault path from agent-inject-secret-<name>; "" for a template-only secret.
  path: string
  // Where the rendered file appears inside the containers.
  file: string
  // 'default-map' | 'default-json' | 'inline' | 'file:<source path>'
  template: string
  // Vault paths the template reads with `secret "..."` (includes `path`).
  pathsRead: string[]
}

export interface AgentSummary {
  role: string
  authType: string
  authPath: string
  vaultAddress: string
  injectionType: InjectionType
  // 'init+sidecar' | 'init-only' | 'sidecar-only' | 'native-sidecar' | 'native-sidecar+init'
  mode: string
  // Where the agent's Kubernetes token comes from.
  tokenSource: { kind: 'pod-mount' | 'named-volume' | 'projected'; volume: string; tokenPath: string; audience?: string; expirationSeconds?: number }
  secrets: SecretSummary[]
  appContainers: string[]
  // Every vault.hashicorp.com/ and vault-injector.dev/ annotation in effect,
  // after namespace and injector-wide defaults.
  annotations: Record<string, string>
  tlsSkipVerify: boolean
  hasResourceLimits: boolean
}

export interface EngineResult {
  decision: Decision
  // Why: the skip reason, the denial message, or what was injected.
  reason: string
  // The pod after mutation: a fresh object, never the input.
  pod: JsonObject
  // The RFC 6902 patch from the input pod to `pod`; empty unless injected.
  patch: Operation[]
  // Things the user should know that do not block the pod (unknown keys...).
  warnings: string[]
  agent?: AgentSummary
}
