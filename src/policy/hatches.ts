// Escape hatches: what lets a pod replace, widen or hide what the injector
// generates and the policy judges. Each is found under every rule that applies
// (denied under enforce, warned under warn, recorded under audit) unless the
// rule lists its name in allow.escapeHatches. The pod's own annotations count;
// namespace defaults from the policy and injector settings are the platform's
// choice and do not.
import type { JsonObject } from '../engine/types.ts'
import type { Facts } from './effective.ts'
import { parseAddress } from './address.ts'
import { MOUNT_PATH, OWNED_CONTAINERS, VOLUME } from '../engine/names.ts'
import { posix } from 'node:path'

export const ESCAPE_HATCHES = [
  'agent-json-patch',
  'agent-init-json-patch',
  'agent-configmap',
  'agent-inject-template-file',
  'agent-inject-command',
  'dynamic-templates',
  'agent-inject-token',
  'agent-cache-enable',
  'auth-config',
  'proxy-address',
  'ca-cert',
  'ca-key',
  'tls-server-name',
  'host-aliases',
  'dns-config',
  'share-process-namespace',
] as const

export type EscapeHatch = (typeof ESCAPE_HATCHES)[number]

export interface HatchFinding {
  hatch: EscapeHatch
  message: string
}

const V = 'vault.hashicorp.com/'
const MAX_LISTED = 5

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function listed(items: string[]): string {
  const shown = items.slice(0, MAX_LISTED).join(', ')
  return items.length > MAX_LISTED ? `${shown} and ${items.length - MAX_LISTED} more` : shown
}

const TRUE = /^(1|t|true)$/i

// The agents' volumes that hold a token (see agentTokenMounts).
const TOKEN_VOLUMES: ReadonlySet<string> = new Set([VOLUME.homeInit, VOLUME.homeSidecar, VOLUME.token, VOLUME.cache])

// Every volume mount in the pod: which container, whether it is an agent, which volume.
function mountsOf(spec: JsonObject): { container: string; agent: boolean; volume: string }[] {
  const out: { container: string; agent: boolean; volume: string }[] = []
  for (const field of ['initContainers', 'containers', 'ephemeralContainers']) {
    for (const c of Array.isArray(spec[field]) ? spec[field] : []) {
      if (!isObject(c)) continue
      for (const m of Array.isArray(c.volumeMounts) ? c.volumeMounts : []) {
        if (isObject(m)) out.push({ container: String(c.name), agent: OWNED_CONTAINERS.has(String(c.name)), volume: String(m.name) })
      }
    }
  }
  return out
}

// Audiences of the projected service-account tokens in a volume.
function tokenAudiences(volume: JsonObject): string[] {
  const sources = isObject(volume.projected) && Array.isArray(volume.projected.sources) ? volume.projected.sources : []
  return sources.flatMap((s) => (isObject(s) && isObject(s.serviceAccountToken) && typeof s.serviceAccountToken.audience === 'string' ? [s.serviceAccountToken.audience] : []))
}

// What lets a container of the pod's own use the agents' credentials:
// - a volume of the agents that holds a token, asked for by name (the API
//   server checks a mount's volume name only after the webhook): their homes
//   (the Vault token sink), their service-account token for Vault, the cache;
// - a projected token of the audience of the agents' own token
//   (vault-injector.dev/token-audience): a Vault role bound to that audience
//   accepts it from the app as from the agents. A token volume of the pod's
//   own that the agents use (IRSA, agent-service-account-token-volume-name)
//   is the app's already: no promise is broken when the app mounts it.
// `final` is the pod after injection, where the agents and their volumes are.
function agentTokenMounts(final: JsonObject): string[] {
  const spec = isObject(final.spec) ? final.spec : {}
  const volumes = new Map((Array.isArray(spec.volumes) ? spec.volumes : []).filter(isObject).map((v) => [String(v.name), tokenAudiences(v)] as const))
  const mounts = mountsOf(spec)
  const agentAudiences = new Set(volumes.get(VOLUME.token) ?? [])
  const out: string[] = []
  for (const m of mounts) {
    if (m.agent) continue
    const audience = m.volume === VOLUME.token ? undefined : (volumes.get(m.volume) ?? []).find((a) => agentAudiences.has(a))
    if (TOKEN_VOLUMES.has(m.volume) || audience !== undefined) out.push(`container ${m.container} mounts ${m.volume}${audience !== undefined ? ` (a token for audience ${audience}, the agents' own)` : ''}`)
  }
  return [...new Set(out)]
}

// The pod's own value for an annotation, when it sets one that differs from the namespace default.
function own(annotations: JsonObject, defaults: Readonly<Record<string, string>>, key: string): string | undefined {
  const value = annotations[key]
  if (typeof value !== 'string' || value === '' || value === defaults[key]) return undefined
  return value
}

// `final` is the pod after injection: where the agents and their volumes are.
export function findHatches(pod: JsonObject, defaults: Readonly<Record<string, string>>, facts: Facts, final: JsonObject = pod): HatchFinding[] {
  const metadata = isObject(pod.metadata) ? pod.metadata : {}
  const annotations = isObject(metadata.annotations) ? metadata.annotations : {}
  const out: HatchFinding[] = []
  const add = (hatch: EscapeHatch, message: string): void => {
    out.push({ hatch, message: `escape hatch ${hatch}: ${message}` })
  }
  if (own(annotations, defaults, `${V}agent-json-patch`) !== undefined) add('agent-json-patch', 'vault.hashicorp.com/agent-json-patch rewrites the generated vault-agent container')
  if (own(annotations, defaults, `${V}agent-init-json-patch`) !== undefined) add('agent-init-json-patch', 'vault.hashicorp.com/agent-init-json-patch rewrites the generated vault-agent-init container')
  if (own(annotations, defaults, `${V}agent-configmap`) !== undefined) add('agent-configmap', 'vault.hashicorp.com/agent-configmap makes the agents ignore the generated configuration; role, auth path and secret paths cannot be judged')
  if (facts.templateFiles.length > 0) add('agent-inject-template-file', `template files are read inside the agent, unseen at admission (${listed(facts.templateFiles.map((t) => t.file))})`)
  if (facts.templateCommands.length > 0) add('agent-inject-command', `commands run inside the agent, which holds the Vault token (${listed(facts.templateCommands)})`)
  if (facts.dynamicTemplates.length > 0) {
    add('dynamic-templates', `what these templates read cannot be determined statically: ${listed(facts.dynamicTemplates.map((d) => `${d.file} (${d.why.join('; ')})`))}`)
  }
  if (own(annotations, defaults, `${V}agent-inject-token`) !== undefined && TRUE.test(String(annotations[`${V}agent-inject-token`]))) {
    add('agent-inject-token', 'vault.hashicorp.com/agent-inject-token hands the Vault token to the app, which can then read any path the role allows')
  }
  // The CA the agents trust as Vault's, read from a Secret the pod names: a
  // ca-cert (or ca-path) the platform set under /vault/tls or /vault/custom
  // trusts whatever the pod's own tls-secret or agent-extra-secret holds.
  if (own(annotations, defaults, `${V}ca-cert`) === undefined) {
    const caFiles = [...new Set(facts.agents.flatMap((a) => {
      const vault = isObject(a.config?.vault) ? a.config.vault : {}
      return [vault.ca_cert, vault.ca_path].filter((f): f is string => typeof f === 'string' && f !== '').map((f) => posix.normalize(f))
    }))]
    for (const [key, dir] of [['tls-secret', MOUNT_PATH.tlsSecrets], ['agent-extra-secret', MOUNT_PATH.extraSecrets]] as const) {
      const picked = caFiles.filter((f) => f.startsWith(`${dir}/`))
      if (own(annotations, defaults, `${V}${key}`) !== undefined && picked.length > 0) add('ca-cert', `vault.hashicorp.com/${key} picks the Secret of ${listed(picked)}, the CA the agent trusts as Vault's`)
    }
  }
  const spec = isObject(pod.spec) ? pod.spec : {}
  const stolen = facts.agents.length > 0 ? agentTokenMounts(final) : []
  if (stolen.length > 0) add('agent-inject-token', `${listed(stolen)}: the agents' credentials, which the app can then use for any path the role allows`)
  // Read from the configuration the agents run: a listener whose cache adds the agent's token.
  const lends = facts.agents.some((a) => {
    const cache = isObject(a.config?.cache) ? a.config.cache : undefined
    return Array.isArray(a.config?.listener) && cache !== undefined && cache.use_auto_auth_token !== false && cache.use_auto_auth_token !== 'false'
  })
  for (const key of ['agent-cache-enable', 'agent-enable-quit']) {
    const value = own(annotations, defaults, `${V}${key}`)
    if (value !== undefined && TRUE.test(value) && lends) add('agent-cache-enable', `vault.hashicorp.com/${key} opens a listener on 127.0.0.1 that lends the agent's Vault token to every process of the pod`)
  }
  const authConfig = Object.keys(annotations).filter((k) => k.startsWith(`${V}auth-config-`) && k !== `${V}auth-config-role` && own(annotations, defaults, k) !== undefined).sort()
  if (authConfig.length > 0) add('auth-config', `${listed(authConfig)} change how the agent logs in (token path, credentials)`)
  for (const key of ['proxy-address', 'ca-cert', 'ca-key', 'tls-server-name'] as const) {
    if (own(annotations, defaults, `${V}${key}`) === undefined) continue
    const why = key === 'proxy-address' ? 'sends the agent\'s Vault traffic through a proxy the pod chooses' : 'changes which certificate the agent trusts as Vault\'s'
    add(key, `vault.hashicorp.com/${key} ${why}`)
  }
  const hosts = facts.addresses.map(parseAddress).flatMap((a) => (typeof a === 'string' ? [] : [a.host]))
  const aliased = (Array.isArray(spec.hostAliases) ? spec.hostAliases : []).flatMap((a) => (isObject(a) && Array.isArray(a.hostnames) ? a.hostnames.map((h) => String(h).toLowerCase()) : []))
  const redirected = hosts.filter((h) => aliased.includes(h))
  if (redirected.length > 0) add('host-aliases', `spec.hostAliases points the Vault host ${listed(redirected)} at an address the pod chooses`)
  // Name servers, search domains or options (ndots) of the pod's choosing.
  const dns = isObject(spec.dnsConfig) && Object.values(spec.dnsConfig).some((v) => Array.isArray(v) && v.length > 0)
  if ((dns || spec.dnsPolicy === 'None') && hosts.some((h) => !/^[\d.]+$|^\[/.test(h))) add('dns-config', 'the pod chooses its own DNS (spec.dnsConfig / dnsPolicy: None), and with it where the Vault host name leads')
  const shared = `${V}agent-share-process-namespace`
  const sharing = facts.agents.length > 0 && (spec.shareProcessNamespace === true || spec.hostPID === true || (own(annotations, defaults, shared) !== undefined && TRUE.test(String(annotations[shared]))))
  if (sharing && (defaults[shared] === undefined || spec.hostPID === true)) add('share-process-namespace', 'the app shares the agents\' process namespace (shareProcessNamespace or hostPID) and can reach their Vault token through /proc')
  return out
}
