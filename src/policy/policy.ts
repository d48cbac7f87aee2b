// The injector policy: which namespaces may use which Vault roles, secret
// paths, auth paths, addresses, Vault namespaces and agent images;
// requirements on the injected agents; which escape hatches a namespace may
// use; namespace defaults for annotations. Pure: a parsed policy and the
// facts of one injected pod in, a verdict out.
import picomatch from 'picomatch'
import { compileAddressPattern, parseAddress, type AddressMatcher } from './address.ts'
import type { EscapeHatch } from './hatches.ts'
import type { NamespaceContext, PolicyEvaluator, PolicyFinding, PolicySubject, PolicyVerdict } from './types.ts'

export type Mode = 'enforce' | 'warn' | 'audit'

export interface LabelSelector {
  matchLabels?: Record<string, string>
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[]
}

export interface Allow {
  roles?: string[]
  secretPaths?: string[]
  authPaths?: string[]
  vaultAddresses?: string[]
  vaultNamespaces?: string[]
  agentImages?: string[]
  escapeHatches?: EscapeHatch[]
}

export interface Rule {
  name: string
  mode?: Mode
  namespaces?: { names?: string[]; selector?: LabelSelector }
  allow?: Allow
  require?: { resourceLimits?: boolean; noTlsSkipVerify?: boolean; jobsInitOnlyOrNative?: boolean; restrictedSecurityContext?: boolean }
  defaults?: Record<string, string>
}

export interface PolicyDocument {
  apiVersion: 'vault-injector.dev/v1alpha1'
  kind: 'InjectorPolicy'
  metadata?: { name?: string }
  spec: { rules: Rule[] }
}

// Findings quote values (role names, paths) bounded; a pod yields at most this many.
const MAX_VALUE_CHARS = 120
const MAX_FINDINGS = 20
const MAX_MESSAGE_CHARS = 600

export function quote(value: string): string {
  return JSON.stringify(value.length > MAX_VALUE_CHARS ? value.slice(0, MAX_VALUE_CHARS) + '…' : value)
}

function bound(message: string): string {
  return message.length > MAX_MESSAGE_CHARS ? message.slice(0, MAX_MESSAGE_CHARS - 1) + '…' : message
}

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

// Vault paths as the agent sends them: no dot segments, empty segments,
// leading slash, percent escapes or backslashes, which a glob would read one
// way and Vault (or a proxy before it) another. A query (?version=2) is allowed
// and not part of what is matched.
function pathProblem(path: string): string | undefined {
  const bare = path.split('?')[0]!
  if (bare === '') return 'is empty'
  if (/[\u0000-\u001f\u007f%\\#]/.test(bare)) return 'contains a control character, %, # or a backslash'
  if (bare.startsWith('/')) return 'starts with /'
  if (bare.split('/').some((s, i, all) => s === '.' || s === '..' || (s === '' && i < all.length - 1))) return 'has an empty, . or .. segment'
  return undefined
}

// Where an address pattern cannot be compiled, the policy does not load.
export class PolicyFieldError extends Error {
  readonly field: string
  constructor(field: string, message: string) {
    super(`${field}: ${message}`)
    this.field = field
  }
}

interface CompiledRule {
  rule: Rule
  mode: Mode
  appliesTo(ns: NamespaceContext): boolean
  // Applies only because the namespace's labels are unknown and it selects by label.
  appliesUnseen(ns: NamespaceContext): boolean
  roles?: (v: string) => boolean
  secretPaths?: (v: string) => boolean
  authPaths?: (v: string) => boolean
  vaultNamespaces?: (v: string) => boolean
  agentImages?: (v: string) => boolean
  addresses?: AddressMatcher[]
  hatches: ReadonlySet<string>
}

function compile(rule: Rule, index: number): CompiledRule {
  const names = rule.namespaces?.names ? globs(rule.namespaces.names) : undefined
  const selector = rule.namespaces?.selector
  const allow = rule.allow ?? {}
  const addresses = allow.vaultAddresses?.map((pattern, i) => {
    const matcher = compileAddressPattern(pattern)
    if (typeof matcher === 'string') throw new PolicyFieldError(`/spec/rules/${index}/allow/vaultAddresses/${i}`, `${quote(pattern)} ${matcher}`)
    return matcher
  })
  return {
    rule,
    mode: rule.mode ?? 'enforce',
    appliesTo: (ns) => (!names || names(ns.namespace)) && (!selector || ns.labelsUnknown === true || selectorMatches(selector, ns.namespaceLabels)),
    appliesUnseen: (ns) => selector !== undefined && ns.labelsUnknown === true && (!names || names(ns.namespace)),
    ...(allow.roles ? { roles: globs(allow.roles) } : {}),
    ...(allow.secretPaths ? { secretPaths: globs(allow.secretPaths) } : {}),
    ...(allow.authPaths ? { authPaths: globs(allow.authPaths) } : {}),
    ...(allow.vaultNamespaces ? { vaultNamespaces: globs(allow.vaultNamespaces) } : {}),
    ...(allow.agentImages ? { agentImages: globs(allow.agentImages) } : {}),
    ...(addresses ? { addresses } : {}),
    hatches: new Set(allow.escapeHatches ?? []),
  }
}

function isRoot(sc: Record<string, unknown>): string | undefined {
  if (sc.runAsUser === 0) return 'runs as root (runAsUser 0)'
  if (sc.runAsUser === undefined && sc.runAsNonRoot !== true) return 'may run as root (no runAsUser and runAsNonRoot is not true)'
  return undefined
}

function securityProblems(sc: Record<string, unknown>): string[] {
  const problems: string[] = []
  const root = isRoot(sc)
  if (root) problems.push(root)
  if (sc.privileged === true) problems.push('is privileged')
  if (sc.allowPrivilegeEscalation !== false) problems.push('allows privilege escalation')
  const caps = (typeof sc.capabilities === 'object' && sc.capabilities !== null ? sc.capabilities : {}) as { add?: unknown; drop?: unknown }
  if (Array.isArray(caps.add) && caps.add.length > 0) problems.push(`adds capabilities ${caps.add.map(String).join(', ').slice(0, MAX_VALUE_CHARS)}`)
  if (!Array.isArray(caps.drop) || !caps.drop.includes('ALL')) problems.push('does not drop ALL capabilities')
  if (sc.readOnlyRootFilesystem !== true) problems.push('has a writable root filesystem')
  return problems
}

// What one rule finds wrong with one injected pod.
function check(c: CompiledRule, s: PolicySubject): string[] {
  const problems: string[] = []
  const f = s.facts
  const list = (patterns: string[] | undefined): string => (patterns ?? []).join(', ').slice(0, 2 * MAX_VALUE_CHARS)
  const allow = c.rule.allow ?? {}
  if (c.roles) {
    for (const role of f.roles) {
      if (role === '') problems.push(`the agent logs in without a Vault role (allowed: ${list(allow.roles)})`)
      else if (!c.roles(role)) problems.push(`Vault role ${quote(role)} is not allowed in namespace ${s.namespace} (allowed: ${list(allow.roles)})`)
    }
  }
  if (c.authPaths) {
    for (const path of f.authPaths) {
      const bad = pathProblem(path)
      if (bad || path.includes('?')) problems.push(`auth path ${quote(path)} is refused: it ${bad ?? 'carries a query'}`)
      else if (!c.authPaths(path)) problems.push(`auth path ${quote(path)} is not allowed (allowed: ${list(allow.authPaths)})`)
    }
  }
  if (c.addresses) {
    for (const raw of f.addresses) {
      const parsed = parseAddress(raw)
      if (typeof parsed === 'string') problems.push(`Vault address ${quote(raw)} is refused: it ${parsed}`)
      else if (!c.addresses.some((m) => m(parsed))) problems.push(`Vault address ${quote(raw)} is not allowed (allowed: ${list(allow.vaultAddresses)})`)
    }
  }
  if (c.vaultNamespaces) {
    for (const ns of f.vaultNamespaces) {
      const bad = pathProblem(ns.replace(/\/$/, ''))
      if (bad || ns.includes('?')) problems.push(`Vault namespace ${quote(ns)} is refused: it ${bad ?? 'carries a query'}`)
      else if (!c.vaultNamespaces(ns.replace(/\/$/, ''))) problems.push(`Vault namespace ${quote(ns)} is not allowed (allowed: ${list(allow.vaultNamespaces)})`)
    }
  }
  if (c.secretPaths) {
    for (const { path, file } of f.secretPaths) {
      const bad = pathProblem(path)
      if (bad) problems.push(`secret path ${quote(path)} (rendered to ${file}) is refused: it ${bad}`)
      else if (!c.secretPaths(path.split('?')[0]!)) problems.push(`secret path ${quote(path)} (rendered to ${file}) is not allowed in namespace ${s.namespace} (allowed: ${list(allow.secretPaths)})`)
    }
  }
  if (c.agentImages) for (const a of f.agents) if (!c.agentImages(a.image)) problems.push(`agent image ${quote(a.image)} (${a.container}) is not allowed (allowed: ${list(allow.agentImages)})`)
  const require = c.rule.require ?? {}
  if (require.resourceLimits) {
    const missing = f.agents.filter((a) => {
      const limits = (a.resources.limits ?? {}) as Record<string, unknown>
      return limits.cpu === undefined || limits.memory === undefined
    })
    if (missing.length > 0) problems.push(`agent CPU and memory limits must be set (vault.hashicorp.com/agent-limits-cpu, agent-limits-mem; missing on ${missing.map((a) => a.container).join(', ')})`)
  }
  if (require.noTlsSkipVerify && f.tlsSkipVerify) problems.push('vault.hashicorp.com/tls-skip-verify must not be true (the agent would not verify Vault\'s certificate)')
  if (require.restrictedSecurityContext) {
    for (const a of f.agents) {
      const bad = securityProblems(a.securityContext)
      if (bad.length > 0) problems.push(`${a.container}: the agent's securityContext must be restricted, but it ${bad.join(', ')}`)
    }
  }
  if (require.jobsInitOnlyOrNative && s.isJob && f.agents.some((a) => a.field === 'containers')) {
    problems.push('Job pods must use vault.hashicorp.com/agent-pre-populate-only: "true" or vault-injector.dev/native-sidecar: "true" (a classic sidecar never exits)')
  }
  for (const h of s.hatches) if (!c.hatches.has(h.hatch)) problems.push(`${h.message} (not in allow.escapeHatches)`)
  for (const u of f.unjudgeable) problems.push(`cannot be judged: ${u}`)
  return problems
}

export class Policy implements PolicyEvaluator {
  readonly name: string
  #rules: CompiledRule[]

  constructor(document: PolicyDocument) {
    this.name = document.metadata?.name ?? 'policy'
    this.#rules = document.spec.rules.map(compile)
  }

  applies(ns: NamespaceContext): boolean {
    return this.#rules.some((c) => c.appliesTo(ns))
  }

  selectsByLabel(): boolean {
    return this.#rules.some((c) => c.rule.namespaces?.selector !== undefined)
  }

  // Later rules win over earlier ones for the same annotation.
  annotationDefaults(ns: NamespaceContext): Record<string, string> {
    const out: Record<string, string> = {}
    // A rule applied only because the labels are unknown restricts, but its
    // defaults (a role, an address) are meant for the namespaces it selects.
    for (const c of this.#rules) if (c.appliesTo(ns) && !c.appliesUnseen(ns)) Object.assign(out, c.rule.defaults ?? {})
    return out
  }

  evaluate(subject: PolicySubject): PolicyVerdict {
    const all: PolicyFinding[] = []
    for (const c of this.#rules) {
      if (!c.appliesTo(subject)) continue
      const unseen = c.appliesUnseen(subject) ? ` (namespace ${quote(subject.namespace)} is not known to vault-injector yet, so this rule, which selects namespaces by label, applies to it; retry once the namespace is seen)` : ''
      for (const problem of new Set(check(c, subject))) all.push({ rule: c.rule.name, mode: c.mode, message: bound(`policy rule "${c.rule.name}": ${problem}${unseen}`) })
    }
    // Bounded: the first findings in full, then a count.
    const findings = all.slice(0, MAX_FINDINGS)
    if (all.length > MAX_FINDINGS) {
      const rest = all.slice(MAX_FINDINGS)
      const mode = rest.some((f) => f.mode === 'enforce') ? 'enforce' : rest.some((f) => f.mode === 'warn') ? 'warn' : 'audit'
      findings.push({ rule: rest[0]!.rule, mode, message: `${rest.length} more policy finding(s) not shown` })
    }
    const enforced = findings.filter((f) => f.mode === 'enforce').map((f) => f.message)
    return {
      ...(enforced.length > 0 ? { denied: enforced.join('; ') } : {}),
      warnings: findings.filter((f) => f.mode === 'warn').map((f) => f.message),
      findings,
    }
  }
}
