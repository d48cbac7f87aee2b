// Annotations (already read and parsed) → one validated agent spec. Everything
// after this step works from the spec only.
import type { PodAnnotations, Reading } from './read.ts'
import { ANNOTATION_TABLE, fullName } from './annotations.ts'
import { showValue, valueProblem } from './read.ts'
import { collectSecrets, type SecretSpec } from './secrets.ts'
import type { EngineSettings } from './settings.ts'
import { findTokenSource, type TokenSource } from './token.ts'
import type { JsonObject } from './types.ts'
import { MAX_ANNOTATION_JSON_DEPTH, nestsDeeperThan } from './values.ts'

// The 31 telemetry keys vault-k8s passes through; others are dropped (we warn).
const TELEMETRY_KEYS = new Set([
  'usage_gauge_period', 'maximum_gauge_cardinality', 'disable_hostname', 'enable_hostname_label', 'lease_metrics_epsilon',
  'num_lease_metrics_buckets', 'add_lease_metrics_namespace_labels', 'filter_default', 'prefix_filter', 'statsite_address',
  'statsd_address', 'circonus_api_token', 'circonus_api_app', 'circonus_api_url', 'circonus_submission_interval',
  'circonus_submission_url', 'circonus_check_id', 'circonus_check_force_metric_activation', 'circonus_check_instance_id',
  'circonus_check_search_tag', 'circonus_check_display_name', 'circonus_check_tags', 'circonus_broker_id',
  'circonus_broker_select_tag', 'dogstatsd_addr', 'dogstatsd_tags', 'prometheus_retention_time', 'stackdriver_project_id',
  'stackdriver_location', 'stackdriver_namespace', 'stackdriver_debug_logs',
])

export interface Resources {
  limits: Record<string, string>
  requests: Record<string, string>
}

export interface AgentSpec {
  image: string
  // Auth
  role: string
  authType: string
  authPath: string
  authConfig: Record<string, string>
  vaultNamespace: string
  minBackoff: string
  maxBackoff: string
  autoAuthExitOnErr: boolean
  token: TokenSource
  irsaMount?: { name: string; mountPath: string }
  awsEnv: JsonObject[]
  // Vault connection
  address: string
  caCert: string
  caKey: string
  clientCert: string
  clientKey: string
  tlsSkipVerify: boolean
  tlsServerName: string
  tlsSecret: string
  proxyAddress: string
  clientMaxRetries?: number
  clientTimeout: string
  vaultCACertBytes: string
  // Shape
  prePopulate: boolean
  prePopulateOnly: boolean
  initFirst: boolean
  native: boolean
  appContainers: string[]
  configMap: string
  extraSecret: string
  copyVolumeMountsFrom: string
  sidecarPatch: unknown[]
  initPatch: unknown[]
  shareProcessNamespace?: boolean
  // Secrets
  secretVolumePath: string
  secrets: SecretSpec[]
  injectToken: boolean
  templateConfig: JsonObject
  // Runtime
  resources: Resources
  runAsUser: number
  runAsGroup: number
  setSecurityContext: boolean
  revokeOnShutdown: boolean
  revokeGrace: number
  goMaxProcs?: number
  logLevel: string
  logFormat: string
  disableIdleConnections: string[]
  disableKeepAlives: string[]
  // Cache
  cacheEnable: boolean
  cacheListenerPort: number
  cacheUseAutoAuthToken: string
  cacheExitOnErr: boolean
  enableQuit: boolean
  persistentCache: boolean
  telemetry: JsonObject
}

export interface SpecResult {
  spec?: AgentSpec
  errors: string[]
  warnings: string[]
}

type Container = { name?: unknown; securityContext?: { runAsUser?: unknown }; env?: unknown; volumeMounts?: unknown }

function namedContainers(podSpec: JsonObject, field: 'containers' | 'initContainers'): Container[] {
  const list = podSpec[field]
  return Array.isArray(list) ? (list as Container[]) : []
}

function resourcesFrom(a: PodAnnotations): Resources {
  const pick = (entries: [string, string][]): Record<string, string> => Object.fromEntries(entries.filter(([, value]) => value !== ''))
  return {
    limits: pick([
      ['cpu', a.limitsCpu],
      ['memory', a.limitsMem],
      ['ephemeral-storage', a.limitsEphemeral],
    ]),
    requests: pick([
      ['cpu', a.requestsCpu],
      ['memory', a.requestsMem],
      ['ephemeral-storage', a.requestsEphemeral],
    ]),
  }
}

// auth-config-<k> → method.config.<k with - → _>.
function authConfigFrom(r: Reading): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of [...r.keyed('authConfig')].sort(([a], [b]) => (a < b ? -1 : 1))) out[key.replace(/-/g, '_')] = value
  return out
}

function telemetryFrom(r: Reading, warnings: string[]): JsonObject {
  const out: JsonObject = {}
  for (const [rawKey, raw] of [...r.keyed('telemetry')].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const key = rawKey.replace(/-/g, '_')
    if (!TELEMETRY_KEYS.has(key)) {
      warnings.push(`vault.hashicorp.com/agent-telemetry-${rawKey}: not a Vault Agent telemetry setting; ignored`)
      continue
    }
    const value = decodeJsonValue(raw)
    if (value === TOO_DEEP) warnings.push(`vault.hashicorp.com/agent-telemetry-${rawKey}: JSON nested deeper than ${MAX_ANNOTATION_JSON_DEPTH} levels; passed on as a string`)
    out[key] = value === TOO_DEEP ? raw : value
  }
  return out
}

const TOO_DEEP = Symbol('too deep')

// vault-k8s JSON-decodes telemetry values when it can (numbers, booleans,
// lists). Nesting is bounded: the configuration is serialized recursively.
function decodeJsonValue(raw: string): unknown {
  try {
    const value: unknown = JSON.parse(raw)
    return nestsDeeperThan(value, MAX_ANNOTATION_JSON_DEPTH) ? TOO_DEEP : value
  } catch {
    return raw
  }
}

function templateConfigFrom(a: PodAnnotations): JsonObject {
  const config: JsonObject = { exit_on_retry_failure: a.exitOnRetryFailure }
  if (a.staticSecretRenderInterval) config.static_secret_render_interval = a.staticSecretRenderInterval
  if (a.maxConnectionsPerHost) config.max_connections_per_host = a.maxConnectionsPerHost
  if (a.leaseRenewalThreshold) config.lease_renewal_threshold = a.leaseRenewalThreshold
  return config
}

function appContainersFrom(r: Reading, podSpec: JsonObject, warnings: string[]): string[] {
  const a = r.pod
  const all = namedContainers(podSpec, 'containers').map((c) => String(c.name))
  // vault-k8s splits the value on commas as written: "a, b" names "a" and
  // " b" (no such container), and "" names none.
  if (!r.isSet('injectContainers')) return all
  const chosen = a.injectContainers.split(',')
  for (const name of chosen) {
    if (!all.includes(name)) warnings.push(`vault.hashicorp.com/agent-inject-containers: the pod has no container ${showValue(name)}${name.trim() !== name ? ' (names are not trimmed, as in vault-k8s)' : ''}`)
  }
  return all.filter((name) => chosen.includes(name))
}

function runAsUserFrom(a: PodAnnotations, podSpec: JsonObject, errors: string[]): number {
  const uid = a.runAsUser
  if (!a.runAsSameUser) return uid
  const first = namedContainers(podSpec, 'containers')[0]
  const appUid = first?.securityContext?.runAsUser
  if (typeof appUid !== 'number') {
    errors.push('vault.hashicorp.com/agent-run-as-same-user: the first container has no securityContext.runAsUser to copy')
  } else if (appUid === 0) {
    errors.push('vault.hashicorp.com/agent-run-as-same-user: the first container runs as root (runAsUser 0); the agent will not')
  }
  return typeof appUid === 'number' ? appUid : uid
}

// With set-security-context off injector-wide, a user or group annotation turns it back on (vault-k8s).
function setSecurityContextFrom(r: Reading): boolean {
  if (r.isSet('setSecurityContext')) return r.pod.setSecurityContext
  return r.pod.setSecurityContext || r.isSet('runAsUser') || r.isSet('runAsGroup') || r.isSet('runAsSameUser')
}

const AWS_ENV = ['AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_DEFAULT_REGION', 'AWS_REGION']

// IRSA: the EKS token mount and AWS_* env of the app go to the agents too.
function irsaFrom(podSpec: JsonObject): { mount?: { name: string; mountPath: string }; env: JsonObject[] } {
  const env = new Map<string, JsonObject>()
  let mount: { name: string; mountPath: string } | undefined
  for (const container of namedContainers(podSpec, 'containers')) {
    const mounts = Array.isArray(container.volumeMounts) ? (container.volumeMounts as { name?: unknown; mountPath?: unknown }[]) : []
    const found = mounts.find((m) => typeof m.mountPath === 'string' && m.mountPath.includes('eks.amazonaws.com'))
    if (!mount && found && typeof found.name === 'string' && typeof found.mountPath === 'string') mount = { name: found.name, mountPath: found.mountPath }
    for (const item of Array.isArray(container.env) ? (container.env as JsonObject[]) : []) {
      if (typeof item.name === 'string' && AWS_ENV.includes(item.name) && !env.has(item.name)) env.set(item.name, item)
    }
  }
  return { ...(mount ? { mount } : {}), env: AWS_ENV.filter((n) => env.has(n)).map((n) => env.get(n)!) }
}

export interface SpecContext {
  isJob: boolean
  // The pod's earlier injection used a projected token: keep it, even though
  // the API server has since mounted the app's own token.
  keepProjectedToken: boolean
}

export function buildSpec(r: Reading, podSpec: JsonObject, settings: EngineSettings, context: SpecContext): SpecResult {
  const { isJob } = context
  const a = r.pod
  const errors: string[] = [...r.errors]
  const warnings: string[] = [...r.warnings]
  const secrets = collectSecrets(r)
  errors.push(...secrets.errors)
  warnings.push(...secrets.warnings)

  const authType = a.authType
  const authConfig = authConfigFrom(r)
  const role = a.role
  const configMap = a.configMap
  const address = a.service
  if (!configMap) {
    // An explicit "" is not the default: vault-k8s refuses it.
    if (authType === '') errors.push('vault.hashicorp.com/auth-type: "" names no auth method (leave it out for kubernetes)')
    if (authType === 'kubernetes' && role === '' && !authConfig.role) {
      errors.push('vault.hashicorp.com/role: missing; Kubernetes auth needs the Vault role to log in as (or set vault.hashicorp.com/auth-config-role)')
    }
    if (address === '') errors.push('vault.hashicorp.com/service: no Vault address (set the annotation or AGENT_INJECT_VAULT_ADDR)')
  }

  const token = findTokenSource(podSpec, {
    ...(a.serviceAccountTokenVolumeName ? { namedVolume: a.serviceAccountTokenVolumeName } : {}),
    project: context.keepProjectedToken || settings.projectServiceAccountToken || r.isSet('tokenAudience') || r.isSet('tokenExpirationSeconds'),
    audience: a.tokenAudience,
    expirationSeconds: a.tokenExpirationSeconds,
  })
  if (typeof token === 'string') errors.push(token)

  const prePopulate = a.prePopulate
  const prePopulateOnly = a.prePopulateOnly
  const native = a.nativeSidecar && !prePopulateOnly
  if (!prePopulate && prePopulateOnly) {
    errors.push('vault.hashicorp.com/agent-pre-populate-only: "true" needs the init container, but agent-pre-populate is "false"')
  }
  const shareProcessNamespace = a.shareProcessNamespace
  if (shareProcessNamespace !== undefined && podSpec.shareProcessNamespace === false && shareProcessNamespace) {
    errors.push('vault.hashicorp.com/agent-share-process-namespace: "true" conflicts with the pod\'s spec.shareProcessNamespace: false')
  }
  const copyFrom = a.copyVolumeMounts
  // vault-k8s copies nothing then; a warning says so.
  if (copyFrom !== '' && ![...namedContainers(podSpec, 'containers'), ...namedContainers(podSpec, 'initContainers')].some((c) => c.name === copyFrom)) {
    warnings.push(valueProblem(fullName(ANNOTATION_TABLE.copyVolumeMounts), copyFrom, 'names no container of the pod; no mounts are copied'))
  }
  const irsa = authType === 'aws' ? irsaFrom(podSpec) : { env: [] }
  const cacheEnable = a.cacheEnable
  if (isJob && !prePopulateOnly && !native) {
    warnings.push('this pod belongs to a Job: its vault-agent sidecar keeps running after the job finishes; use vault.hashicorp.com/agent-pre-populate-only: "true" or vault-injector.dev/native-sidecar: "true"')
  }
  if (errors.length > 0 || typeof token === 'string') return { errors, warnings }

  const spec: AgentSpec = {
    image: a.image,
    role,
    authType,
    authPath: a.authPath,
    authConfig,
    vaultNamespace: a.vaultNamespace,
    minBackoff: a.authMinBackoff,
    maxBackoff: a.authMaxBackoff,
    autoAuthExitOnErr: a.autoAuthExitOnErr,
    token,
    ...(irsa.mount ? { irsaMount: irsa.mount } : {}),
    awsEnv: irsa.env,
    address,
    caCert: a.caCert,
    caKey: a.caKey,
    clientCert: a.clientCert,
    clientKey: a.clientKey,
    tlsSkipVerify: a.tlsSkipVerify,
    tlsServerName: a.tlsServerName,
    tlsSecret: a.tlsSecret,
    proxyAddress: a.proxyAddress,
    ...(a.clientMaxRetries !== undefined ? { clientMaxRetries: a.clientMaxRetries } : {}),
    clientTimeout: a.clientTimeout,
    vaultCACertBytes: settings.vaultCACertBytes,
    prePopulate,
    prePopulateOnly,
    initFirst: a.initFirst,
    native,
    appContainers: appContainersFrom(r, podSpec, warnings),
    configMap,
    extraSecret: a.extraSecret,
    copyVolumeMountsFrom: copyFrom,
    sidecarPatch: a.jsonPatch,
    initPatch: a.initJsonPatch,
    ...(shareProcessNamespace !== undefined ? { shareProcessNamespace } : {}),
    secretVolumePath: a.secretVolumePath,
    secrets: secrets.secrets,
    injectToken: a.injectToken,
    templateConfig: templateConfigFrom(a),
    resources: resourcesFrom(a),
    runAsUser: runAsUserFrom(a, podSpec, errors),
    runAsGroup: a.runAsGroup,
    setSecurityContext: setSecurityContextFrom(r),
    revokeOnShutdown: a.revokeOnShutdown,
    revokeGrace: a.revokeGrace,
    ...(a.goMaxProcs !== undefined ? { goMaxProcs: a.goMaxProcs } : {}),
    logLevel: a.logLevel,
    logFormat: a.logFormat,
    disableIdleConnections: a.disableIdleConnections,
    disableKeepAlives: a.disableKeepAlives,
    cacheEnable,
    cacheListenerPort: a.cacheListenerPort,
    cacheUseAutoAuthToken: a.cacheUseAutoAuthToken,
    cacheExitOnErr: a.cacheExitOnErr,
    enableQuit: a.enableQuit,
    persistentCache: cacheEnable && prePopulate && !prePopulateOnly && !native,
    telemetry: telemetryFrom(r, warnings),
  }
  if (errors.length > 0) return { errors, warnings }
  return { spec, errors, warnings }
}
