// What the injected agents will really do, read from the final pod: after
// namespace defaults, injector settings, overrides and json-patches. The
// agent containers are found by name, their VAULT_CONFIG is decoded, and the
// environment variables the agent reads instead of its configuration
// (VAULT_ADDR, VAULT_NAMESPACE, VAULT_SKIP_VERIFY) are taken into account.
// Where a patch changed what cannot be judged (the command, mounts, probes,
// other configuration keys), that is said, not guessed.
import { posix } from 'node:path'
import { MOUNT_PATH, OWNED_CONTAINERS, VOLUME } from '../engine/names.ts'
import type { JsonObject } from '../engine/types.ts'
import { templateReads } from './templates.ts'

export interface AgentFacts {
  container: string
  // Where it runs: 'containers' or 'initContainers'.
  field: string
  image: string
  resources: JsonObject
  // Container fields over the pod's (runAsUser and the like).
  securityContext: JsonObject
  // Decoded VAULT_CONFIG; undefined when the agent reads another configuration.
  config?: JsonObject
}

export interface Facts {
  agents: AgentFacts[]
  // '' = the agent logs in without a role.
  roles: string[]
  authPaths: string[]
  addresses: string[]
  // 'root' = no namespace: the root namespace.
  vaultNamespaces: string[]
  secretPaths: { path: string; file: string }[]
  tlsSkipVerify: boolean
  // Per template file: why its reads cannot be determined statically.
  dynamicTemplates: { file: string; why: string[] }[]
  templateFiles: { file: string; source: string }[]
  templateCommands: string[]
  // Why part of the agents' behaviour cannot be judged (patched commands, mounts...).
  unjudgeable: string[]
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function list(value: unknown): JsonObject[] {
  return Array.isArray(value) ? value.filter(isObject) : []
}

export function agentContainers(pod: JsonObject): { container: JsonObject; field: string }[] {
  const spec = isObject(pod.spec) ? pod.spec : {}
  const out: { container: JsonObject; field: string }[] = []
  for (const field of ['initContainers', 'containers']) {
    for (const c of list(spec[field])) if (OWNED_CONTAINERS.has(String(c.name))) out.push({ container: c, field })
  }
  return out
}

function envValue(container: JsonObject, name: string): { value?: string; from?: boolean } | undefined {
  const entry = list(container.env).findLast((e) => e.name === name)
  if (!entry) return undefined
  if (entry.valueFrom !== undefined) return { from: true }
  return { value: typeof entry.value === 'string' ? entry.value : '' }
}

// The pods of one workload carry the same configuration: each is decoded
// once. The decoded objects are shared, so they are only ever read.
const CACHE_ENTRIES = 256
const decoded = new Map<string, JsonObject | undefined>()

function decodeConfig(container: JsonObject): JsonObject | undefined {
  const env = envValue(container, 'VAULT_CONFIG')
  if (env?.value === undefined) return undefined
  if (decoded.has(env.value)) return decoded.get(env.value)
  let config: JsonObject | undefined
  try {
    const value: unknown = JSON.parse(Buffer.from(env.value, 'base64').toString('utf8'))
    config = isObject(value) ? value : undefined
  } catch {
    config = undefined
  }
  if (decoded.size >= CACHE_ENTRIES) decoded.delete(decoded.keys().next().value!)
  decoded.set(env.value, config)
  return config
}

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined)

function effectiveSecurityContext(container: JsonObject, podSpec: JsonObject): JsonObject {
  const pod = isObject(podSpec.securityContext) ? podSpec.securityContext : {}
  const own = isObject(container.securityContext) ? container.securityContext : {}
  const out: JsonObject = {}
  for (const key of ['runAsUser', 'runAsGroup', 'runAsNonRoot']) if (pod[key] !== undefined) out[key] = pod[key]
  return { ...out, ...own }
}

function method(config: JsonObject): JsonObject {
  const autoAuth = isObject(config.auto_auth) ? config.auto_auth : {}
  return isObject(autoAuth.method) ? autoAuth.method : {}
}

function addConfigFacts(config: JsonObject, facts: Facts): void {
  const m = method(config)
  const methodConfig = isObject(m.config) ? m.config : {}
  facts.roles.push(str(methodConfig.role) ?? '')
  facts.authPaths.push(str(m.mount_path) ?? `auth/${str(m.type) ?? ''}`)
  const vault = isObject(config.vault) ? config.vault : {}
  if (vault.address !== undefined) facts.addresses.push(String(vault.address))
  for (const ns of [m.namespace, vault.namespace]) if (ns !== undefined && ns !== '') facts.vaultNamespaces.push(String(ns))
  if (vault.tls_skip_verify === true || vault.tls_skip_verify === 'true') facts.tlsSkipVerify = true
  for (const template of list(config.template)) {
    const file = str(template.destination) ?? '(no destination)'
    if (typeof template.contents === 'string') {
      const reads = templateReads(template.contents, str(template.left_delimiter), str(template.right_delimiter))
      for (const path of reads.paths) facts.secretPaths.push({ path, file })
      if (reads.dynamic.length > 0) facts.dynamicTemplates.push({ file, why: reads.dynamic })
    }
    if (template.source !== undefined) facts.templateFiles.push({ file, source: String(template.source) })
    if (template.command !== undefined || template.exec !== undefined) facts.templateCommands.push(file)
  }
}

export function collectFacts(pod: JsonObject): Facts {
  const facts: Facts = { agents: [], roles: [], authPaths: [], addresses: [], vaultNamespaces: [], secretPaths: [], tlsSkipVerify: false, dynamicTemplates: [], templateFiles: [], templateCommands: [], unjudgeable: [] }
  const podSpec = isObject(pod.spec) ? pod.spec : {}
  let namespaceSeen = false
  for (const { container, field } of agentContainers(pod)) {
    const config = decodeConfig(container)
    facts.agents.push({
      container: String(container.name),
      field,
      image: str(container.image) ?? '',
      resources: isObject(container.resources) ? container.resources : {},
      securityContext: effectiveSecurityContext(container, podSpec),
      ...(config ? { config } : {}),
    })
    if (config) addConfigFacts(config, facts)
    // The agent reads these instead of (and over) its configuration.
    const addr = envValue(container, 'VAULT_ADDR')
    if (addr?.from) facts.unjudgeable.push(`${String(container.name)}: VAULT_ADDR comes from valueFrom; the Vault address cannot be judged`)
    else if (addr?.value !== undefined) facts.addresses.push(addr.value)
    const ns = envValue(container, 'VAULT_NAMESPACE')
    if (ns?.from) facts.unjudgeable.push(`${String(container.name)}: VAULT_NAMESPACE comes from valueFrom; the Vault namespace cannot be judged`)
    else if (ns?.value) facts.vaultNamespaces.push(ns.value)
    const skip = envValue(container, 'VAULT_SKIP_VERIFY')
    if (skip && (skip.from || /^(1|t|true)$/i.test(skip.value ?? ''))) facts.tlsSkipVerify = true
    if (config || addr || ns) namespaceSeen = true
    // Whatever put them there (secret-volume-path, copy-volume-mounts, a
    // patch): a volume over the agent's program or trust store changes what
    // runs and whom it trusts.
    for (const m of list(container.volumeMounts)) {
      if (AGENT_SYSTEM_PATHS.test(String(m.mountPath))) facts.unjudgeable.push(`${String(container.name)}: a volume is mounted at ${String(m.mountPath)}, over the agent's program or trust store`)
      if (overHome(m)) facts.unjudgeable.push(`${String(container.name)}: a volume is mounted at ${String(m.mountPath)}, over the agent's home, where it writes its Vault token`)
    }
  }
  if (namespaceSeen && facts.vaultNamespaces.length === 0) facts.vaultNamespaces.push('root')
  facts.roles = [...new Set(facts.roles)]
  facts.authPaths = [...new Set(facts.authPaths)]
  facts.addresses = [...new Set(facts.addresses)]
  facts.vaultNamespaces = [...new Set(facts.vaultNamespaces)]
  return facts
}

const AGENT_SYSTEM_PATHS = /^\/(bin|sbin|usr|lib|lib64|lib32|etc|proc|sys|dev)?(\/|$)/

// A volume other than the agent's home at its home or a folder above it. The
// API server refuses two mounts at one path by comparing the strings, so
// "/home/vault/" passes beside "/home/vault"; the runtime cleans both and
// mounts the later one over the home, where the agent writes its token.
function overHome(mount: JsonObject): boolean {
  if (mount.name === VOLUME.homeInit || mount.name === VOLUME.homeSidecar || typeof mount.mountPath !== 'string') return false
  const path = posix.normalize(mount.mountPath).replace(/\/+$/, '') || '/'
  return path === MOUNT_PATH.home || MOUNT_PATH.home.startsWith(`${path === '/' ? '' : path}/`)
}

// Environment variables a patch may change without changing what is judged.
const HARMLESS_ENV = new Set(['VAULT_LOG_LEVEL', 'VAULT_LOG_FORMAT', 'GOMAXPROCS', 'GOMEMLIMIT', 'TZ'])
// Judged from the final container whatever their origin.
const JUDGED_ENV = new Set(['VAULT_CONFIG', 'VAULT_ADDR', 'VAULT_NAMESPACE', 'VAULT_SKIP_VERIFY'])
// Configuration keys judged from the final configuration (JSON pointers).
const JUDGED_CONFIG = ['/auto_auth/method/config/role', '/auto_auth/method/mount_path', '/auto_auth/method/namespace', '/vault/address', '/vault/namespace', '/vault/tls_skip_verify', '/template']
// Where a mount added by a patch could replace the agent's program, its trust
// store, its home or its token.
const SYSTEM_PATHS = /^\/(bin|sbin|usr|lib|lib64|lib32|etc|home|vault|var\/run\/secrets|run\/secrets|proc|sys|dev|tmp)?(\/|$)/

// The ServiceAccount admission plugin mounts the pod's own token into every
// container it finds without one, agents included, when a pod that already
// carries agents is created (a manifest injected offline, a reinvocation).
function isServiceAccountMount(m: JsonObject): boolean {
  return m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount' && m.readOnly === true && /^kube-api-access-[a-z0-9]+$/.test(String(m.name))
}

function envEntry(e: JsonObject): string {
  if (e.valueFrom === undefined) return JSON.stringify(e.value ?? '')
  // The API server adds apiVersion: v1 to fieldRefs.
  const from = structuredClone(e.valueFrom) as JsonObject
  if (isObject(from.fieldRef)) delete from.fieldRef.apiVersion
  return JSON.stringify(from)
}

function mountKey(m: JsonObject): string {
  return `${String(m.name)}|${String(m.mountPath)}|${String(m.subPath ?? '')}|${String(m.subPathExpr ?? '')}`
}

function probeCommand(container: JsonObject, probe: string): string {
  const p = container[probe]
  return isObject(p) && isObject(p.exec) ? JSON.stringify(p.exec.command ?? []) : isObject(p) ? JSON.stringify(Object.keys(p).filter((k) => ['httpGet', 'tcpSocket', 'grpc'].includes(k))) : ''
}

// Differences between two decoded configurations, as JSON pointers, outside
// the keys judged anyway.
function configChanges(actual: unknown, expected: unknown, path = ''): string[] {
  if (JUDGED_CONFIG.some((p) => path === p || path.startsWith(p + '/'))) return []
  if (isObject(actual) && isObject(expected)) {
    const keys = [...new Set([...Object.keys(actual), ...Object.keys(expected)])].sort()
    return keys.flatMap((k) => configChanges(actual[k], expected[k], `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`))
  }
  if (Array.isArray(actual) && Array.isArray(expected) && actual.length === expected.length) {
    return actual.flatMap((v, i) => configChanges(v, expected[i], `${path}/${i}`))
  }
  return JSON.stringify(actual) === JSON.stringify(expected) ? [] : [path || '/']
}

// What a patch (or a pod that arrived with agent containers of its own)
// changed in the agents beyond what is judged from the final state: each
// such change makes the agents' behaviour impossible to judge.
export function unjudgeableChanges(final: JsonObject, reference: JsonObject | undefined): string[] {
  const problems: string[] = []
  const expected = new Map(reference ? agentContainers(reference).map((a) => [String(a.container.name), a]) : [])
  const present = new Set(agentContainers(final).map((a) => String(a.container.name)))
  // A renamed agent would run unjudged under another name.
  for (const name of expected.keys()) if (!present.has(name)) problems.push(`${name} was renamed or removed`)
  for (const { container: c, field } of agentContainers(final)) {
    const name = String(c.name)
    const want = expected.get(name)
    if (!want) {
      problems.push(`${name} is not a container the injector adds to this pod`)
      continue
    }
    const r = want.container
    if (field !== want.field) problems.push(`${name} was moved to ${field}`)
    for (const key of ['command', 'args', 'lifecycle', 'envFrom', 'workingDir']) {
      const a = JSON.stringify(c[key] ?? (key === 'lifecycle' ? {} : null))
      const b = JSON.stringify(r[key] ?? (key === 'lifecycle' ? {} : null))
      if (a !== b) problems.push(`${name}: ${key} differs from what the injector generates`)
    }
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      if (probeCommand(c, probe) !== probeCommand(r, probe)) problems.push(`${name}: ${probe} differs from what the injector generates`)
    }
    const envA = new Map(list(c.env).map((e) => [String(e.name), envEntry(e)]))
    const envB = new Map(list(r.env).map((e) => [String(e.name), envEntry(e)]))
    for (const key of [...new Set([...envA.keys(), ...envB.keys()])].sort()) {
      if (HARMLESS_ENV.has(key) || envA.get(key) === envB.get(key)) continue
      if (key === 'VAULT_CONFIG') {
        const actual = decodeConfig(c)
        const wanted = decodeConfig(r)
        if (!actual) problems.push(`${name}: VAULT_CONFIG is not a base64 JSON configuration`)
        else for (const pointer of configChanges(actual, wanted)) problems.push(`${name}: the configuration's ${pointer} differs from what the injector generates`)
        continue
      }
      if (JUDGED_ENV.has(key)) continue
      problems.push(`${name}: environment variable ${key} differs from what the injector generates`)
    }
    const mountsA = list(c.volumeMounts)
    const mountsB = new Set(list(r.volumeMounts).map(mountKey))
    const keptA = new Set(mountsA.map(mountKey))
    for (const m of mountsB) if (!keptA.has(m)) problems.push(`${name}: the mount ${m.split('|')[1]} was removed or changed`)
    for (const m of mountsA) {
      if (!mountsB.has(mountKey(m)) && SYSTEM_PATHS.test(String(m.mountPath)) && !isServiceAccountMount(m)) problems.push(`${name}: a volume is mounted at ${String(m.mountPath)}, over the agent's program, trust store, home or token`)
    }
  }
  return [...new Set(problems)]
}
