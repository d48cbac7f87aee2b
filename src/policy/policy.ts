// The injector policy: which namespaces may use which Vault roles, secret
// paths, auth paths and addresses; requirements on injected pods; namespace
// defaults for annotations. Pure: a parsed policy and an engine result in, a
// verdict out.
import picomatch from 'picomatch'
import type { EngineResult, JsonObject } from '../engine/types.ts'
import type { PolicyContext, PolicyEvaluator, PolicyFinding, PolicyVerdict } from './types.ts'

export type Mode = 'enforce' | 'warn' | 'audit'

export interface LabelSelector {
  matchLabels?: Record<string, string>
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[]
}

export interface Rule {
  name: string
  mode?: Mode
  namespaces?: { names?: string[]; selector?: LabelSelector }
  allow?: { roles?: string[]; secretPaths?: string[]; authPaths?: string[]; vaultAddresses?: string[] }
  require?: { resourceLimits?: boolean; noTlsSkipVerify?: boolean; jobsInitOnlyOrNative?: boolean }
  defaults?: Record<string, string>
}

export interface PolicyDocument {
  apiVersion: 'vault-injector.dev/v1alpha1'
  kind: 'InjectorPolicy'
  metadata?: { name?: string }
  spec: { rules: Rule[] }
}

type Namespace = Omit<PolicyContext, 'pod'>

export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key)
    const inValues = has && (e.values ?? []).includes(labels[e.key]!)
    if (e.operator === 'In' && !inValues) return false
    if (e.operator === 'NotIn' && inValues) return false
    if (e.operator === 'Exists' && !has) return false
    if (e.operator === 'DoesNotExist' && has) return false
  }
  return true
}

function globs(patterns: string[]): (value: string) => boolean {
  const matcher = picomatch(patterns, { dot: true })
  return (value) => matcher(value)
}

function isJob(pod: JsonObject): boolean {
  const owners = (pod.metadata as JsonObject | undefined)?.ownerReferences
  return Array.isArray(owners) && owners.some((o) => (o as JsonObject | null)?.kind === 'Job')
}

interface CompiledRule {
  rule: Rule
  mode: Mode
  appliesTo(ns: Namespace): boolean
  allowed: { [K in keyof NonNullable<Rule['allow']>]?: (value: string) => boolean }
}

function compile(rule: Rule): CompiledRule {
  const names = rule.namespaces?.names ? globs(rule.namespaces.names) : undefined
  const selector = rule.namespaces?.selector
  const allowed: CompiledRule['allowed'] = {}
  for (const key of ['roles', 'secretPaths', 'authPaths', 'vaultAddresses'] as const) {
    const patterns = rule.allow?.[key]
    if (patterns) allowed[key] = globs(patterns)
  }
  return {
    rule,
    mode: rule.mode ?? 'enforce',
    appliesTo: (ns) => (!names || names(ns.namespace)) && (!selector || selectorMatches(selector, ns.namespaceLabels)),
    allowed,
  }
}

// What one rule finds wrong with one injection.
function check(c: CompiledRule, ctx: PolicyContext, result: EngineResult, workloadKind?: string): string[] {
  const agent = result.agent
  if (!agent) return []
  const problems: string[] = []
  const list = (patterns: string[] | undefined): string => (patterns ?? []).join(', ')
  if (c.allowed.roles && !c.allowed.roles(agent.role)) problems.push(`Vault role "${agent.role}" is not allowed in namespace ${ctx.namespace} (allowed: ${list(c.rule.allow?.roles)})`)
  if (c.allowed.authPaths && !c.allowed.authPaths(agent.authPath)) problems.push(`auth path "${agent.authPath}" is not allowed (allowed: ${list(c.rule.allow?.authPaths)})`)
  if (c.allowed.vaultAddresses && !c.allowed.vaultAddresses(agent.vaultAddress)) problems.push(`Vault address "${agent.vaultAddress}" is not allowed (allowed: ${list(c.rule.allow?.vaultAddresses)})`)
  if (c.allowed.secretPaths) {
    for (const secret of agent.secrets) {
      for (const path of secret.pathsRead) {
        if (!c.allowed.secretPaths(path)) problems.push(`secret path "${path}" (secret ${secret.name}) is not allowed in namespace ${ctx.namespace} (allowed: ${list(c.rule.allow?.secretPaths)})`)
      }
    }
  }
  const require = c.rule.require ?? {}
  if (require.resourceLimits && !agent.hasResourceLimits) problems.push('agent CPU and memory limits must be set (vault.hashicorp.com/agent-limits-cpu, agent-limits-mem)')
  if (require.noTlsSkipVerify && agent.tlsSkipVerify) problems.push('vault.hashicorp.com/tls-skip-verify must not be true')
  const job = isJob(ctx.pod) || workloadKind === 'Job' || workloadKind === 'CronJob'
  if (require.jobsInitOnlyOrNative && job && agent.mode !== 'init-only' && agent.mode !== 'native-sidecar') {
    problems.push('Job pods must use vault.hashicorp.com/agent-pre-populate-only: "true" or vault-injector.dev/native-sidecar: "true" (a classic sidecar never exits)')
  }
  return problems
}

export class Policy implements PolicyEvaluator {
  readonly name: string
  #rules: CompiledRule[]

  constructor(document: PolicyDocument) {
    this.name = document.metadata?.name ?? 'policy'
    this.#rules = document.spec.rules.map(compile)
  }

  // Later rules win over earlier ones for the same annotation.
  annotationDefaults(ns: Namespace): Record<string, string> {
    const out: Record<string, string> = {}
    for (const c of this.#rules) if (c.appliesTo(ns)) Object.assign(out, c.rule.defaults ?? {})
    return out
  }

  evaluate(ctx: PolicyContext, result: EngineResult, workloadKind?: string): PolicyVerdict {
    const findings: PolicyFinding[] = []
    if (result.decision !== 'inject') return { warnings: [], findings }
    for (const c of this.#rules) {
      if (!c.appliesTo(ctx)) continue
      for (const problem of check(c, ctx, result, workloadKind)) findings.push({ rule: c.rule.name, mode: c.mode, message: `policy rule "${c.rule.name}": ${problem}` })
    }
    const enforced = findings.filter((f) => f.mode === 'enforce').map((f) => f.message)
    return {
      ...(enforced.length > 0 ? { denied: enforced.join('; ') } : {}),
      warnings: findings.filter((f) => f.mode === 'warn').map((f) => f.message),
      findings,
    }
  }
}
