// The one pipeline, in order: decide → read annotations → build the agent spec
// → strip an earlier injection → render and add → diff the original against
// the result. The webhook, the CLI and the tests all enter here.
import { copyForMutation, jsonClone } from './clone.ts'
import { VAULT_PREFIX } from './annotations.ts'
import { RenderError } from './containers.ts'
import { diff } from './diff.ts'
import { PROJECTED_TOKEN_VOLUME, tokenPath } from './token.ts'
import { applyInjection, reservedNameClashes, STATUS_ANNOTATION, stripInjection, topUpMounts } from './pod.ts'
import { unknownAnnotationWarnings } from './suggest.ts'
import { readAnnotations, valueProblem } from './read.ts'
import { boolType, parseGoBool } from './values.ts'
import { buildSpec, type AgentSpec } from './spec.ts'
import type { AgentSummary, EngineInput, EngineResult, InjectionType, JsonObject } from './types.ts'

const INJECT_ANNOTATION = `${VAULT_PREFIX}agent-inject`
const SYSTEM_NAMESPACES = new Set(['kube-system', 'kube-public'])

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function result(decision: EngineResult['decision'], reason: string, pod: JsonObject, warnings: string[] = []): EngineResult {
  return { decision, reason, pod, patch: [], warnings }
}

// Shape checks the API server would have made; the CLI and fuzzed input may not have.
function shapeProblem(pod: JsonObject): string | undefined {
  if (pod.metadata !== undefined && !isObject(pod.metadata)) return 'metadata is not an object'
  const annotations = (pod.metadata as JsonObject | undefined)?.annotations
  if (annotations !== undefined && annotations !== null && !isObject(annotations)) return 'metadata.annotations is not an object'
  if (!isObject(pod.spec)) return 'the pod has no spec'
  for (const field of ['containers', 'initContainers', 'volumes']) {
    const value = pod.spec[field]
    if (value === undefined || value === null) continue
    if (!Array.isArray(value) || !value.every(isObject)) return `spec.${field} is not a list of objects`
    for (const item of value as JsonObject[]) {
      if (field !== 'volumes' && item.volumeMounts !== undefined && item.volumeMounts !== null && (!Array.isArray(item.volumeMounts) || !item.volumeMounts.every(isObject))) {
        return `spec.${field}[${String(item.name)}].volumeMounts is not a list of objects`
      }
      if (field !== 'volumes' && item.env !== undefined && item.env !== null && !Array.isArray(item.env)) return `spec.${field}[${String(item.name)}].env is not a list`
    }
  }
  if (!Array.isArray(pod.spec.containers) || pod.spec.containers.length === 0) return 'spec.containers is empty'
  return undefined
}

function ownedByJob(pod: JsonObject, workloadKind?: string): boolean {
  if (workloadKind === 'Job' || workloadKind === 'CronJob') return true
  const owners = (pod.metadata as JsonObject | undefined)?.ownerReferences
  return Array.isArray(owners) && owners.some((o) => isObject(o) && o.kind === 'Job')
}

function injectionType(spec: AgentSpec): InjectionType {
  if (spec.native) return spec.prePopulate ? 'init_and_sidecar' : 'sidecar_only'
  if (spec.prePopulateOnly) return 'init_only'
  return spec.prePopulate ? 'init_and_sidecar' : 'sidecar_only'
}

function mode(spec: AgentSpec): string {
  if (spec.native) return 'native-sidecar'
  if (spec.prePopulateOnly) return 'init-only'
  return spec.prePopulate ? 'init+sidecar' : 'sidecar-only'
}

function summarize(spec: AgentSpec, effective: () => Record<string, string>): AgentSummary {
  const token = spec.token
  return {
    role: spec.role || spec.authConfig.role || '',
    authType: spec.authType,
    authPath: spec.authPath,
    vaultAddress: spec.address,
    injectionType: injectionType(spec),
    mode: mode(spec),
    tokenSource: {
      kind: token.kind,
      volume: token.volumeName,
      tokenPath: tokenPath(token),
      ...(token.audience !== undefined ? { audience: token.audience } : {}),
      ...(token.expirationSeconds !== undefined ? { expirationSeconds: token.expirationSeconds } : {}),
    },
    secrets: spec.secrets.map((s) => ({ name: s.name, path: s.path, file: s.destination, template: s.templateKind, pathsRead: [...s.pathsRead] })),
    appContainers: [...spec.appContainers],
    get annotations() {
      // Computed on demand: only policy checks and explain read it.
      return effective()
    },
    tlsSkipVerify: spec.tlsSkipVerify,
    hasResourceLimits: spec.resources.limits.cpu !== undefined && spec.resources.limits.memory !== undefined,
  }
}

// Skip reasons and denials that come before the annotations are read.
function gate(input: EngineInput, pod: JsonObject): EngineResult | undefined {
  const problem = shapeProblem(pod)
  const annotations = ((pod.metadata as JsonObject | undefined)?.annotations ?? {}) as JsonObject
  const raw = isObject(annotations) ? annotations[INJECT_ANNOTATION] : undefined
  // Not ours to inject; but a key under our prefixes the table does not know
  // is most often a typo of the trigger itself (agent-injet): say so.
  if (raw === undefined) return result('skip', `not annotated: ${INJECT_ANNOTATION} is not set`, pod, isObject(annotations) ? unknownAnnotationWarnings(annotations) : [])
  if (problem) return result('deny', `invalid pod: ${problem}`, pod)
  // "" reads as false in vault-k8s (parseutil.ParseBool): the pod is created uninjected.
  const inject = typeof raw === 'string' ? (raw === '' ? false : parseGoBool(raw)) : undefined
  if (inject === undefined) return result('deny', valueProblem(INJECT_ANNOTATION, String(raw), boolType.accepts), pod)
  if (!inject) return result('skip', `${INJECT_ANNOTATION} is "${String(raw)}"`, pod)
  const phase = (pod.status as JsonObject | undefined)?.phase
  if (phase !== undefined && phase !== '' && phase !== 'Pending') return result('skip', `the pod is ${String(phase)}, not Pending`, pod)
  // vault-k8s looks at the status first: an injected pod is let through anywhere.
  if (SYSTEM_NAMESPACES.has(input.namespace) && annotations[STATUS_ANNOTATION] === 'injected') return result('skip', 'already injected', pod)
  if (SYSTEM_NAMESPACES.has(input.namespace)) {
    return result('deny', `error with request namespace: cannot inject into system namespaces: ${input.namespace}`, pod)
  }
  return undefined
}

export function injectPod(input: EngineInput): EngineResult {
  if (!isObject(input.pod)) return result('deny', 'invalid pod: not a JSON object', {})
  const original = input.pod
  const pod = copyForMutation(original)
  // managedFields can be huge and is never ours: keep it out of the diff.
  const metadata = isObject(pod.metadata) ? pod.metadata : undefined
  const managedFields = metadata?.managedFields
  if (metadata) delete metadata.managedFields
  const gated = gate(input, pod)
  if (gated) return restoreManagedFields(gated, managedFields)

  const annotations = (metadata?.annotations ?? {}) as JsonObject
  const podSpec = pod.spec as JsonObject
  const status = annotations[STATUS_ANNOTATION]
  // The spec is built from the pod without any earlier injection; a pod never
  // injected must not already use our names.
  const userSpec = status === undefined ? podSpec : jsonClone(podSpec)
  let hadProjectedToken = false
  if (status !== undefined) {
    hadProjectedToken = stripInjection(userSpec).includes(PROJECTED_TOKEN_VOLUME)
  } else {
    const clashes = reservedNameClashes(podSpec)
    if (clashes.length > 0) {
      return restoreManagedFields(result('deny', `the pod already has ${clashes.join(', ')}: these names are reserved for the injected Vault Agent`, pod), managedFields)
    }
  }
  const reading = readAnnotations(annotations, input.annotationDefaults ?? {}, input.settings)
  const built = buildSpec(reading, userSpec, input.settings, { isJob: ownedByJob(pod, input.workloadKind), keepProjectedToken: hadProjectedToken })
  if (!built.spec) {
    // An injected pod is never denied (vault-k8s does not read its annotations
    // again): a reinvocation or a restored pod passes unchanged.
    if (status === 'injected') {
      return restoreManagedFields(result('skip', `already injected; not topped up: ${built.errors.join('; ')}`, copyForMutation(original), built.warnings), managedFields)
    }
    return restoreManagedFields(result('deny', built.errors.join('; '), copyForMutation(original), built.warnings), managedFields)
  }

  let toppedUp: string[] = []
  try {
    if (status === 'injected') {
      // Already injected (a reinvocation, or a manifest injected offline): the
      // API server and later webhooks have changed the pod since, so it is not
      // rebuilt; only containers added since get the secrets volume.
      toppedUp = topUpMounts(podSpec, built.spec)
    } else {
      // Any other status (e.g. "update") asks for a fresh injection.
      if (status !== undefined) pod.spec = userSpec
      applyInjection(pod, built.spec)
    }
  } catch (error) {
    if (!(error instanceof RenderError)) throw error
    return restoreManagedFields(result('deny', error.message, copyForMutation(original), built.warnings), managedFields)
  }
  // The original without managedFields; a shallow copy is enough, diff never writes.
  const base = isObject(original.metadata) ? { ...original, metadata: { ...original.metadata } } : original
  if (isObject(base.metadata)) delete base.metadata.managedFields
  const patch = diff(base, pod)
  const summary = summarize(built.spec, () => reading.effective())
  const out: EngineResult = { decision: 'inject', reason: `injected ${summary.mode} with ${summary.secrets.length} secret(s)`, pod, patch, warnings: built.warnings, agent: summary }
  if (status === 'injected') {
    out.decision = patch.length === 0 ? 'skip' : 'inject'
    out.reason = patch.length === 0 ? 'already injected' : `already injected; added the secrets volume to ${toppedUp.join(', ')}`
  } else if (status !== undefined) {
    out.reason = `re-injected (${STATUS_ANNOTATION} was ${JSON.stringify(status)}): ${out.reason}`
  }
  return restoreManagedFields(out, managedFields)
}

function restoreManagedFields(out: EngineResult, managedFields: unknown): EngineResult {
  if (managedFields !== undefined && isObject(out.pod.metadata)) out.pod.metadata.managedFields = managedFields
  return out
}

