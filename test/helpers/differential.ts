// Compares what vault-k8s and vault-injector do to the same pod. Both answers
// are applied to the pod (so the patch form does not matter), the pods the
// API server would reject are recognised, and only the differences the README
// documents are normalised away, each with its reason below.
import fastJsonPatch from 'fast-json-patch'

type Obj = Record<string, any>

export type Outcome = 'patched' | 'unchanged' | 'denied'

export interface Side {
  outcome: Outcome
  pod?: Obj
  message?: string
}

const STATUS = 'vault.hashicorp.com/agent-inject-status'
const AGENTS = new Set(['vault-agent', 'vault-agent-init'])

function applyPatch(pod: Obj, patchBase64: string): Obj {
  const ops = JSON.parse(Buffer.from(patchBase64, 'base64').toString('utf8')) as fastJsonPatch.Operation[]
  return fastJsonPatch.applyPatch(structuredClone(pod), ops, true, false).newDocument
}

// An AdmissionReview answer (either injector's) → what happens to the pod.
export function sideFromAnswer(pod: Obj, answer: Obj): Side {
  if (typeof answer.httpStatus === 'number') return { outcome: 'denied', message: `HTTP ${answer.httpStatus}: ${String(answer.error)}` }
  const response = answer.response ?? {}
  if (!response.allowed) return { outcome: 'denied', message: String(response.status?.message ?? response.result?.message ?? '') }
  if (!response.patch) return { outcome: 'unchanged', pod }
  return { outcome: 'patched', pod: applyPatch(pod, response.patch) }
}

function containersOf(pod: Obj): Obj[] {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]
}

// What the API server's validation would refuse in the parts injectors touch.
export function apiServerProblems(pod: Obj): string[] {
  const problems: string[] = []
  const volumes = new Set<string>()
  for (const v of pod.spec?.volumes ?? []) {
    if (volumes.has(v.name)) problems.push(`duplicate volume ${v.name}`)
    volumes.add(v.name)
  }
  const names = new Set<string>()
  for (const c of containersOf(pod)) {
    if (names.has(c.name)) problems.push(`duplicate container ${c.name}`)
    names.add(c.name)
    const paths = new Set<string>()
    for (const m of c.volumeMounts ?? []) {
      if (!volumes.has(m.name)) problems.push(`${c.name}: mount of missing volume ${m.name}`)
      if (!m.mountPath) problems.push(`${c.name}: empty mountPath for ${m.name}`)
      if (paths.has(m.mountPath)) problems.push(`${c.name}: duplicate mountPath ${m.mountPath}`)
      paths.add(m.mountPath)
    }
  }
  return problems
}

// Kubernetes quantities as numbers: vault-k8s parses and re-serialises them
// (0.5 → 500m, 1000m → 1); we pass them as written. The API server stores the
// canonical form either way.
const SUFFIX: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 }
function quantity(value: unknown): unknown {
  if (typeof value !== 'string') return value
  const m = /^([+-]?[\d.]+)(e[+-]?\d+|[a-zA-Z]*)$/.exec(value)
  if (!m) return value
  const base = Number(m[1])
  const exp = m[2]!.startsWith('e') ? 10 ** Number(m[2]!.slice(1)) : SUFFIX[m[2]!]
  return exp === undefined ? value : String(Math.round(base * exp * 1e9) / 1e9)
}

function normaliseResources(resources: Obj | undefined): void {
  for (const group of ['limits', 'requests']) {
    const list = resources?.[group]
    if (list) for (const key of Object.keys(list)) list[key] = quantity(list[key])
  }
}

function decodeConfig(value: string, ours: boolean): Obj {
  const config = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as Obj
  // README "Deterministic": templates in secret-name order; vault-k8s walks a
  // Go map. Compared in destination order.
  if (Array.isArray(config.template)) config.template.sort((a: Obj, b: Obj) => (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0))
  if (ours) {
    // README "Service-account token projection": where the agents' token is not
    // at the default path, our persist block names it (the agent refuses to
    // start otherwise); vault-k8s leaves it out.
    delete config.cache?.persist?.service_account_token_file
    // vault-k8s 1.7 added template-lease-renewal-threshold; the 1.6.2 handler
    // we run against ignores the annotation, 1.7.6 writes what we write.
    delete config.template_config?.lease_renewal_threshold
  }
  return config
}

// README "Deterministic": vault-k8s numbers its vault-secrets-custom-N volumes
// in Go map order, we in mount-path order. Both are renamed after their mount
// path and kept in path order.
function renameCustomVolumes(pod: Obj): void {
  const byName = new Map<string, string>()
  for (const c of containersOf(pod)) {
    for (const m of c.volumeMounts ?? []) if (/^vault-secrets-custom-\d+$/.test(m.name)) byName.set(m.name, `vault-secrets-custom@${m.mountPath}`)
  }
  const rename = (name: string): string => byName.get(name) ?? name
  const sortCustom = (list: Obj[]): void => {
    const slots = list.map((item, i) => (/^vault-secrets-custom@/.test(item.name) ? i : -1)).filter((i) => i >= 0)
    const sorted = slots.map((i) => list[i]!).sort((a, b) => (a.name < b.name ? -1 : 1))
    slots.forEach((slot, k) => (list[slot] = sorted[k]!))
  }
  for (const v of pod.spec?.volumes ?? []) v.name = rename(v.name)
  if (pod.spec?.volumes) sortCustom(pod.spec.volumes)
  for (const c of containersOf(pod)) {
    for (const m of c.volumeMounts ?? []) m.name = rename(m.name)
    if (c.volumeMounts) sortCustom(c.volumeMounts)
  }
}

// The normalisations, applied to a copy. `ours` says whose pod it is.
export function normalise(input: Obj, ours: boolean): Obj {
  const pod = structuredClone(input)
  renameCustomVolumes(pod)
  for (const c of containersOf(pod)) {
    if (!AGENTS.has(c.name)) continue
    normaliseResources(c.resources)
    const env = (c.env ?? []) as Obj[]
    for (const e of env) if (e.name === 'VAULT_CONFIG') e.value = decodeConfig(e.value, ours)
    // vault-k8s copies the app's AWS_* variables from a Go map: their order
    // changes from run to run. Stable by name, so a later duplicate (the
    // auth-config-region AWS_REGION) stays after the app's.
    const aws = env.filter((e) => e.name.startsWith('AWS_')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    let k = 0
    c.env = env.map((e) => (e.name.startsWith('AWS_') ? aws[k++]! : e))
    if (!ours && c.volumeMounts) {
      // README "An IRSA token mount that is also the agents' token mount is
      // mounted once": vault-k8s mounts it twice (the API server refuses).
      const seen = new Set<string>()
      c.volumeMounts = c.volumeMounts.filter((m: Obj) => {
        const key = `${m.name}@${m.mountPath}`
        if (seen.has(key)) return false
        seen.add(key)
        return true
      })
    }
  }
  return pod
}

// Where we deny and vault-k8s would inject a pod that cannot work, on purpose
// (README "Denied where vault-k8s would produce a pod that cannot work").
export const DOCUMENTED_STRICTER: readonly { reason: string; message: RegExp }[] = [
  { reason: 'agent-inject-file leaving the secrets volume', message: /leaves the secrets volume/ },
  { reason: 'two secrets rendering to the same file', message: /renders to .*, as agent-inject-secret-/ },
  { reason: 'a never-injected pod already using the injector\'s names', message: /reserved for the injected Vault Agent/ },
  { reason: 'invalid durations, ports, octal modes, URLs and object names', message: /is not (a duration|a port number|an octal file mode|an http or https URL|a Kubernetes object name)/ },
  { reason: 'agent-pre-populate "false" with agent-pre-populate-only "true" (no agent at all)', message: /needs the init container, but agent-pre-populate is "false"/ },
  { reason: 'an empty user or group ID (vault-k8s reads it as 0: root)', message: /agent-run-as-(user|group): "" / },
  { reason: 'an agent log level or format the Vault Agent refuses at start', message: /^vault\.hashicorp\.com\/log-(level|format): / },
]

export type Verdict = { same: true; note: string } | { same: false; difference: string }

// JSON with sorted keys: key order means nothing in a pod.
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) : v,
  )
}

function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (canonical(a) === canonical(b)) return undefined
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) {
    return `${path || '/'}: vault-k8s ${JSON.stringify(a)?.slice(0, 400)} vs ours ${JSON.stringify(b)?.slice(0, 400)}`
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length !== b.length) {
    return `${path}: vault-k8s has ${a.length} items, ours ${b.length}: vault-k8s ${JSON.stringify(a).slice(0, 600)} vs ours ${JSON.stringify(b).slice(0, 600)}`
  }
  const keys = new Set([...Object.keys(a as Obj), ...Object.keys(b as Obj)])
  for (const key of keys) {
    const found = firstDifference((a as Obj)[key], (b as Obj)[key], `${path}/${key}`)
    if (found) return found
  }
  return undefined
}

// Compare a pod's two fates. `tags` are the generator's (re-admission kind...).
export function judge(vk: Side, ours: Side, tags: readonly string[]): Verdict {
  // A patched pod the API server refuses is, for the user, a denial.
  const vkProblems = vk.outcome === 'patched' ? apiServerProblems(vk.pod!) : []
  const oursProblems = ours.outcome === 'patched' ? apiServerProblems(ours.pod!) : []
  if (oursProblems.length > 0 && vkProblems.length === 0) return { same: false, difference: `our pod would be rejected by the API server: ${oursProblems.join('; ')}` }
  let vkEffective: Outcome = vk.outcome
  let note = ''
  if (vkProblems.length > 0) {
    const normalisedProblems = apiServerProblems(normalise(vk.pod!, false))
    if (normalisedProblems.length === 0) {
      note = 'vault-k8s mounts the IRSA token twice (README: mounted once)'
    } else {
      vkEffective = 'denied'
      note = `vault-k8s's pod would be rejected: ${vkProblems.join('; ')}`
    }
  }
  if (vkEffective === 'denied' && ours.outcome === 'denied') return { same: true, note: note || 'both deny' }
  if (vkEffective === 'denied') {
    // README "Idempotent": a status other than "injected" strips the earlier
    // injection; vault-k8s adds a second set of agents (refused).
    if (tags.includes('readmit-update') && vkProblems.some((p) => p.startsWith('duplicate'))) return { same: true, note: 'vault-k8s injects twice on status "update"; we re-inject (README: idempotent)' }
    // README "Service-account token projection".
    if (/failed to find service account volume mount/.test(vk.message ?? '') && ours.outcome === 'patched' && (ours.pod!.spec.volumes ?? []).some((v: Obj) => v.name === 'vault-agent-token')) {
      return { same: true, note: 'no token mount: vault-k8s denies, we project a token (README)' }
    }
    return { same: false, difference: `vault-k8s ${note ? 'produces a pod the API server refuses' : 'denies'} (${note || vk.message}), we ${ours.outcome}` }
  }
  if (ours.outcome === 'denied') {
    const documented = DOCUMENTED_STRICTER.find((d) => d.message.test(ours.message ?? ''))
    if (documented) return { same: true, note: `we deny on purpose: ${documented.reason}` }
    return { same: false, difference: `we deny (${ours.message}), vault-k8s ${vkEffective}` }
  }
  if (vkEffective !== ours.outcome) {
    return { same: false, difference: `vault-k8s ${vkEffective}, we ${ours.outcome}${ours.outcome === 'patched' ? ': ' + firstDifference(vk.pod, ours.pod) : ''}` }
  }
  if (vkEffective === 'unchanged') return { same: true, note: note || 'both unchanged' }
  const found = firstDifference(normalise(vk.pod!, false), normalise(ours.pod!, true))
  if (found) return { same: false, difference: found }
  return { same: true, note: note || 'same pod' }
}

export { STATUS }
