// Annotations (already read and parsed) → one validated agent spec. Everything
// after this step works from the spec only.
import { OUR_PREFIX } from './annotations.ts'
import type { Reading } from './read.ts'
import { showValue } from './read.ts'
import { collectSecrets, type SecretSpec } from './secrets.ts'
import type { Settings } from './settings.ts'
import { findTokenSource, type TokenSource } from './token.ts'
import type { JsonObject } from './types.ts'

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

function resourcesFrom(r: Reading): Resources {
  const pick = (entries: [string, string][]): Record<string, string> =>
    Object.fromEntries(entries.filter(([, value]) => value !== undefined && value !== ''))
  return {
    limits: pick([
      ['cpu', r.get<string>('agent-limits-cpu') ?? ''],
      ['memory', r.get<string>('agent-limits-mem') ?? ''],
      ['ephemeral-storage', r.get<string>('agent-limits-ephemeral') ?? ''],
    ]),
    requests: pick([
      ['cpu', r.get<string>('agent-requests-cpu') ?? ''],
      ['memory', r.get<string>('agent-requests-mem') ?? ''],
      ['ephemeral-storage', r.get<string>('agent-requests-ephemeral') ?? ''],
    ]),
  }
}

// auth-config-<k> → method.config.<k with - → _>.
function authConfigFrom(r: Reading): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of [...r.keyed('auth-config')].sort(([a], [b]) => (a < b ? -1 : 1))) out[key.replace(/-/g, '_')] = value
  return out
}

function telemetryFrom(r: Reading, warnings: string[]): JsonObject {
  const out: JsonObject = {}
  for (const [rawKey, raw] of [...r.keyed('agent-telemetry')].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const key = rawKey.replace(/-/g, '_')
    if (!TELEMETRY_KEYS.has(key)) {
      warnings.push(`vault.hashicorp.com/agent-telemetry-${rawKey}: not a Vault Agent telemetry setting; ignored`)
      continue
    }
    out[key] = decodeJsonValue(raw)
  }
  return out
}

// vault-k8s JSON-decodes telemetry values when it can (numbers, booleans, lists).
function decodeJsonValue(raw: string): unknown {
  try {
    return JSON.parse(raw)
  } catch {
    return raw
  }
}

function templateConfigFrom(r: Reading): JsonObject {
  const config: JsonObject = { exit_on_retry_failure: r.get<boolean>('template-config-exit-on-retry-failure') ?? true }
  const interval = r.get<string>('template-static-secret-render-interval')
  if (interval) config.static_secret_render_interval = interval
  const maxConnections = r.get<number>('template-max-connections-per-host')
  if (maxConnections) config.max_connections_per_host = maxConnections
  const threshold = r.get<number>('template-lease-renewal-threshold')
  if (threshold) config.lease_renewal_threshold = threshold
  return config
}

function appContainersFrom(r: Reading, podSpec: JsonObject, warnings: string[]): string[] {
  const all = namedContainers(podSpec, 'containers').map((c) => String(c.name))
  const chosen = r.get<string[]>('agent-inject-containers')
  if (!chosen || chosen.length === 0) return all
  for (const name of chosen) {
    if (!all.includes(name)) warnings.push(`vault.hashicorp.com/agent-inject-containers: the pod has no container ${showValue(name)}`)
  }
  return all.filter((name) => chosen.includes(name))
}

function runAsUserFrom(r: Reading, podSpec: JsonObject, errors: string[]): number {
  const uid = r.get<number>('agent-run-as-user') ?? 100
  if (!r.get<boolean>('agent-run-as-same-user')) return uid
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
  if (r.isSet('agent-set-security-context')) return r.get<boolean>('agent-set-security-context') ?? true
  const wide = r.get<boolean>('agent-set-security-context') ?? true
  return wide || r.isSet('agent-run-as-user') || r.isSet('agent-run-as-group') || r.isSet('agent-run-as-same-user')
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

export function buildSpec(r: Reading, podSpec: JsonObject, settings: Settings, context: SpecContext): SpecResult {
  const { isJob } = context
  const errors: string[] = [...r.errors]
  const warnings: string[] = [...r.warnings]
  const secretVolumePath = r.get<string>('secret-volume-path') || '/vault/secrets'
  const defaultTemplate = r.get<string>('agent-inject-default-template') ?? 'map'
  const secrets = collectSecrets(r, secretVolumePath, defaultTemplate)
  errors.push(...secrets.errors)
  warnings.push(...secrets.warnings)

  const authType = r.get<string>('auth-type') || 'kubernetes'
  const authConfig = authConfigFrom(r)
  const role = r.get<string>('role') ?? ''
  const configMap = r.get<string>('agent-configmap') ?? ''
  const address = r.get<string>('service') ?? ''
  if (!configMap) {
    if (authType === 'kubernetes' && role === '' && !authConfig.role) {
      errors.push('vault.hashicorp.com/role: missing; Kubernetes auth needs the Vault role to log in as (or set vault.hashicorp.com/auth-config-role)')
    }
    if (address === '') errors.push('vault.hashicorp.com/service: no Vault address (set the annotation or AGENT_INJECT_VAULT_ADDR)')
  }

  const token = findTokenSource(podSpec, {
    ...(r.get<string>('agent-service-account-token-volume-name') ? { namedVolume: r.get<string>('agent-service-account-token-volume-name')! } : {}),
    project: context.keepProjectedToken || settings.projectServiceAccountToken || r.isSet('token-audience', OUR_PREFIX) || r.isSet('token-expiration-seconds', OUR_PREFIX),
    audience: r.get<string>('token-audience', OUR_PREFIX) ?? '',
    expirationSeconds: r.get<number>('token-expiration-seconds', OUR_PREFIX) ?? 3600,
  })
  if (typeof token === 'string') errors.push(token)

  const prePopulate = r.get<boolean>('agent-pre-populate') ?? true
  const prePopulateOnly = r.get<boolean>('agent-pre-populate-only') ?? false
  const native = (r.get<boolean>('native-sidecar', OUR_PREFIX) ?? false) && !prePopulateOnly
  if (!prePopulate && prePopulateOnly) {
    errors.push('vault.hashicorp.com/agent-pre-populate-only: "true" needs the init container, but agent-pre-populate is "false"')
  }
  const shareProcessNamespace = r.get<boolean>('agent-share-process-namespace')
  if (shareProcessNamespace !== undefined && podSpec.shareProcessNamespace === false && shareProcessNamespace) {
    errors.push('vault.hashicorp.com/agent-share-process-namespace: "true" conflicts with the pod\'s spec.shareProcessNamespace: false')
  }
  const copyFrom = r.get<string>('agent-copy-volume-mounts') ?? ''
  if (copyFrom !== '' && ![...namedContainers(podSpec, 'containers'), ...namedContainers(podSpec, 'initContainers')].some((c) => c.name === copyFrom)) {
    errors.push(`vault.hashicorp.com/agent-copy-volume-mounts: ${showValue(copyFrom)} names no container of the pod`)
  }
  const irsa = authType === 'aws' ? irsaFrom(podSpec) : { env: [] }
  const cacheEnable = r.get<boolean>('agent-cache-enable') ?? false
  if (isJob && !prePopulateOnly && !native) {
    warnings.push('this pod belongs to a Job: its vault-agent sidecar keeps running after the job finishes; use vault.hashicorp.com/agent-pre-populate-only: "true" or vault-injector.dev/native-sidecar: "true"')
  }
  if (errors.length > 0 || typeof token === 'string') return { errors, warnings }

  const spec: AgentSpec = {
    image: r.get<string>('agent-image') || settings.vaultImage,
    role,
    authType,
    authPath: r.get<string>('auth-path') ?? 'auth/kubernetes',
    authConfig,
    vaultNamespace: r.get<string>('namespace') ?? '',
    minBackoff: r.get<string>('auth-min-backoff') ?? '',
    maxBackoff: r.get<string>('auth-max-backoff') ?? '',
    autoAuthExitOnErr: r.get<boolean>('agent-auto-auth-exit-on-err') ?? false,
    token,
    ...(irsa.mount ? { irsaMount: irsa.mount } : {}),
    awsEnv: irsa.env,
    address,
    caCert: r.get<string>('ca-cert') ?? '',
    caKey: r.get<string>('ca-key') ?? '',
    clientCert: r.get<string>('client-cert') ?? '',
    clientKey: r.get<string>('client-key') ?? '',
    tlsSkipVerify: r.get<boolean>('tls-skip-verify') ?? false,
    tlsServerName: r.get<string>('tls-server-name') ?? '',
    tlsSecret: r.get<string>('tls-secret') ?? '',
    proxyAddress: r.get<string>('proxy-address') ?? '',
    ...(r.get<number>('client-max-retries') !== undefined ? { clientMaxRetries: r.get<number>('client-max-retries')! } : {}),
    clientTimeout: r.get<string>('client-timeout') ?? '',
    vaultCACertBytes: settings.vaultCACertBytes,
    prePopulate,
    prePopulateOnly,
    initFirst: r.get<boolean>('agent-init-first') ?? false,
    native,
    appContainers: appContainersFrom(r, podSpec, warnings),
    configMap,
    extraSecret: r.get<string>('agent-extra-secret') ?? '',
    copyVolumeMountsFrom: copyFrom,
    sidecarPatch: r.get<unknown[]>('agent-json-patch') ?? [],
    initPatch: r.get<unknown[]>('agent-init-json-patch') ?? [],
    ...(shareProcessNamespace !== undefined ? { shareProcessNamespace } : {}),
    secretVolumePath,
    secrets: secrets.secrets,
    injectToken: r.get<boolean>('agent-inject-token') ?? false,
    templateConfig: templateConfigFrom(r),
    resources: resourcesFrom(r),
    runAsUser: runAsUserFrom(r, podSpec, errors),
    runAsGroup: r.get<number>('agent-run-as-group') ?? 1000,
    setSecurityContext: setSecurityContextFrom(r),
    revokeOnShutdown: r.get<boolean>('agent-revoke-on-shutdown') ?? false,
    revokeGrace: r.get<number>('agent-revoke-grace') ?? 5,
    ...(r.get<number>('go-max-procs') !== undefined ? { goMaxProcs: r.get<number>('go-max-procs')! } : {}),
    logLevel: r.get<string>('log-level') ?? 'info',
    logFormat: r.get<string>('log-format') ?? 'standard',
    disableIdleConnections: r.get<string[]>('agent-disable-idle-connections') ?? [],
    disableKeepAlives: r.get<string[]>('agent-disable-keep-alives') ?? [],
    cacheEnable,
    cacheListenerPort: r.get<number>('agent-cache-listener-port') ?? 8200,
    cacheUseAutoAuthToken: r.get<string>('agent-cache-use-auto-auth-token') ?? 'true',
    cacheExitOnErr: r.get<boolean>('agent-cache-exit-on-err') ?? false,
    enableQuit: r.get<boolean>('agent-enable-quit') ?? false,
    persistentCache: cacheEnable && prePopulate && !prePopulateOnly && !native,
    telemetry: telemetryFrom(r, warnings),
  }
  if (errors.length > 0) return { errors, warnings }
  return { spec, errors, warnings }
}
