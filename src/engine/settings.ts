import { parseGoBool } from './values.ts'

// Injector-wide settings. One table names every setting once: its field, the
// AGENT_INJECT_* environment variable vault-k8s reads (so an existing
// deployment's settings carry over), the matching command-line flag, the
// default and a one-line doc. Parsing, `--help` and the README all come from it.

export interface Settings {
  listen: string
  logLevel: string
  logFormat: string
  vaultAddress: string
  vaultCACertBytes: string
  proxyAddress: string
  vaultNamespace: string
  vaultImage: string
  authType: string
  authPath: string
  revokeOnShutdown: boolean
  runAsUser: number
  runAsGroup: number
  runAsSameUser: boolean
  setSecurityContext: boolean
  defaultTemplate: string
  cpuRequest: string
  memRequest: string
  ephemeralRequest: string
  cpuLimit: string
  memLimit: string
  ephemeralLimit: string
  templateConfigExitOnRetryFailure: boolean
  templateConfigStaticSecretRenderInterval: string
  templateConfigMaxConnectionsPerHost: number
  templateConfigLeaseRenewalThreshold: number
  authMinBackoff: string
  authMaxBackoff: string
  disableIdleConnections: string
  disableKeepAlives: string
  tlsAuto: string
  tlsAutoHosts: string
  tlsCertFile: string
  tlsKeyFile: string
  tlsMinVersion: string
  tlsCipherSuites: string
  telemetryPath: string
  useLeaderElector: boolean
  namespace: string
  podName: string
  // vault-injector's own settings (not in vault-k8s).
  projectServiceAccountToken: boolean
  tokenAudience: string
  tokenExpirationSeconds: number
  nativeSidecar: boolean
  policyFile: string
  maxBodyBytes: number
  maxConcurrentRequests: number
}

export type SettingKind = 'string' | 'boolean' | 'integer' | 'number'

export interface SettingSpec {
  key: keyof Settings
  env: string
  flag: string
  kind: SettingKind
  defaultValue: string
  doc: string
  // Set on the settings vault-k8s does not have.
  ours?: boolean
}

function s(key: keyof Settings, kind: SettingKind, defaultValue: string, doc: string, ours = false): SettingSpec {
  const kebab = key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())
  const flag = FLAG_NAMES[key] ?? kebab
  const env = 'AGENT_INJECT_' + (ENV_NAMES[key] ?? flag.replace(/-/g, '_').toUpperCase())
  return { key, env, flag, kind, defaultValue, doc, ...(ours ? { ours } : {}) }
}

// Where vault-k8s's flag or env names do not follow from the field name.
const FLAG_NAMES: Partial<Record<keyof Settings, string>> = {
  vaultAddress: 'vault-address',
  vaultCACertBytes: 'vault-cacert-bytes',
  authType: 'vault-auth-type',
  authPath: 'vault-auth-path',
  cpuRequest: 'cpu-request',
  memRequest: 'memory-request',
  ephemeralRequest: 'ephemeral-storage-request',
  cpuLimit: 'cpu-limit',
  memLimit: 'memory-limit',
  ephemeralLimit: 'ephemeral-storage-limit',
  templateConfigMaxConnectionsPerHost: 'template-max-connections-per-host',
  templateConfigLeaseRenewalThreshold: 'template-lease-renewal-threshold',
  tlsCertFile: 'tls-cert-file',
  tlsKeyFile: 'tls-key-file',
  templateConfigStaticSecretRenderInterval: 'template-static-secret-render-interval',
}

const ENV_NAMES: Partial<Record<keyof Settings, string>> = {
  vaultAddress: 'VAULT_ADDR',
  authType: 'VAULT_AUTH_TYPE',
  authPath: 'VAULT_AUTH_PATH',
  cpuRequest: 'CPU_REQUEST',
  memRequest: 'MEM_REQUEST',
  ephemeralRequest: 'EPHEMERAL_REQUEST',
  cpuLimit: 'CPU_LIMIT',
  memLimit: 'MEM_LIMIT',
  ephemeralLimit: 'EPHEMERAL_LIMIT',
  templateConfigMaxConnectionsPerHost: 'TEMPLATE_MAX_CONNECTIONS_PER_HOST',
  templateConfigLeaseRenewalThreshold: 'TEMPLATE_LEASE_RENEWAL_THRESHOLD',
  proxyAddress: 'PROXY_ADDR',
}

export const DEFAULT_VAULT_ADDRESS = 'https://vault.vault.svc:8200'

export const SETTINGS: readonly SettingSpec[] = [
  s('listen', 'string', ':8080', 'Address the HTTPS server listens on.'),
  s('logLevel', 'string', 'info', 'Log level: trace, debug, info, warn, error.'),
  s('logFormat', 'string', 'json', 'Log format. Logs are always JSON lines; "standard" is accepted for compatibility.'),
  s('vaultAddress', 'string', DEFAULT_VAULT_ADDRESS, 'Vault address the agents use (annotation vault.hashicorp.com/service overrides).'),
  s('vaultCACertBytes', 'string', '', 'PEM CA certificate for Vault, passed to the agents as VAULT_CACERT_BYTES.'),
  s('proxyAddress', 'string', '', 'HTTPS proxy for the agents (HTTPS_PROXY).'),
  s('vaultNamespace', 'string', '', 'Vault Enterprise namespace for auto-auth.'),
  s('vaultImage', 'string', 'hashicorp/vault:2.0.4', 'Image of the injected agents.'),
  s('authType', 'string', 'kubernetes', 'Vault auth method type.'),
  s('authPath', 'string', 'auth/kubernetes', 'Mount path of the Vault auth method.'),
  s('revokeOnShutdown', 'boolean', 'false', 'Revoke the agent token when the sidecar stops.'),
  s('runAsUser', 'integer', '100', 'User ID the agents run as.'),
  s('runAsGroup', 'integer', '1000', 'Group ID the agents run as.'),
  s('runAsSameUser', 'boolean', 'false', 'Run the agents as the first app container\'s user.'),
  s('setSecurityContext', 'boolean', 'true', 'Give the agents a restrictive securityContext.'),
  s('defaultTemplate', 'string', 'map', 'Default template for secrets without one: map or json.'),
  s('cpuRequest', 'string', '250m', 'CPU request of each agent ("" for none).'),
  s('memRequest', 'string', '64Mi', 'Memory request of each agent ("" for none).'),
  s('ephemeralRequest', 'string', '', 'Ephemeral storage request of each agent.'),
  s('cpuLimit', 'string', '500m', 'CPU limit of each agent ("" for none).'),
  s('memLimit', 'string', '128Mi', 'Memory limit of each agent ("" for none).'),
  s('ephemeralLimit', 'string', '', 'Ephemeral storage limit of each agent.'),
  s('templateConfigExitOnRetryFailure', 'boolean', 'true', 'template_config.exit_on_retry_failure.'),
  s('templateConfigStaticSecretRenderInterval', 'string', '', 'template_config.static_secret_render_interval.'),
  s('templateConfigMaxConnectionsPerHost', 'integer', '0', 'template_config.max_connections_per_host.'),
  s('templateConfigLeaseRenewalThreshold', 'number', '0', 'template_config.lease_renewal_threshold (applied, unlike vault-k8s).'),
  s('authMinBackoff', 'string', '', 'auto_auth min_backoff (Go duration).'),
  s('authMaxBackoff', 'string', '', 'auto_auth max_backoff (Go duration).'),
  s('disableIdleConnections', 'string', '', 'Comma list for the agent\'s disable_idle_connections.'),
  s('disableKeepAlives', 'string', '', 'Comma list for the agent\'s disable_keep_alives.'),
  s('tlsAuto', 'string', '', 'Name of the MutatingWebhookConfiguration whose caBundle auto-TLS keeps current.'),
  s('tlsAutoHosts', 'string', '', 'Comma list of DNS names for the auto-TLS serving certificate.'),
  s('tlsCertFile', 'string', '', 'Serving certificate file (reloaded when it changes).'),
  s('tlsKeyFile', 'string', '', 'Serving key file (reloaded when it changes).'),
  s('tlsMinVersion', 'string', 'tls12', 'Lowest TLS version served: tls12 or tls13.'),
  s('tlsCipherSuites', 'string', '', 'Comma list of OpenSSL cipher names for TLS 1.2 (default: Node\'s).'),
  s('telemetryPath', 'string', '/metrics', 'Path of the Prometheus metrics endpoint.'),
  s('useLeaderElector', 'boolean', 'false', 'Elect one replica (Lease) to manage auto-TLS.'),
  { key: 'namespace', env: 'NAMESPACE', flag: 'namespace', kind: 'string', defaultValue: 'default', doc: 'Namespace the injector runs in.' },
  { key: 'podName', env: 'POD_NAME', flag: 'pod-name', kind: 'string', defaultValue: '', doc: 'Name of the injector pod (leader identity).' },
  s('projectServiceAccountToken', 'boolean', 'false', 'Give every pod\'s agents their own projected token instead of reusing the app\'s.', true),
  s('tokenAudience', 'string', '', 'Audience of projected agent tokens ("" = the API server\'s).', true),
  s('tokenExpirationSeconds', 'integer', '3600', 'Lifetime of projected agent tokens, at least 600.', true),
  s('nativeSidecar', 'boolean', 'false', 'Run the agent as a native sidecar (Kubernetes 1.29+) by default.', true),
  s('policyFile', 'string', '', 'Policy file enforced at admission, reloaded when it changes.', true),
  s('maxBodyBytes', 'integer', String(6 * 1024 * 1024), 'Largest AdmissionReview body accepted, in bytes.', true),
  s('maxConcurrentRequests', 'integer', '256', 'Reviews processed at once; more are answered 503.', true),
]

export class SettingsError extends Error {}

export { parseGoBool }

function parseSetting(spec: SettingSpec, raw: string, origin: string): string | number | boolean {
  switch (spec.kind) {
    case 'string':
      return raw
    case 'boolean': {
      const b = parseGoBool(raw)
      if (b === undefined) throw new SettingsError(`${origin}: "${raw}" is not a boolean (true or false)`)
      return b
    }
    case 'integer': {
      if (!/^-?\d+$/.test(raw)) throw new SettingsError(`${origin}: "${raw}" is not an integer`)
      return Number(raw)
    }
    case 'number': {
      const n = Number(raw)
      if (raw.trim() === '' || !Number.isFinite(n)) throw new SettingsError(`${origin}: "${raw}" is not a number`)
      return n
    }
  }
}

export function defaultSettings(): Settings {
  return loadSettings({}, {})
}

// Environment variables override flags, as in vault-k8s.
export function loadSettings(env: Record<string, string | undefined>, flags: Record<string, string | undefined>): Settings {
  const out: Record<string, unknown> = {}
  for (const spec of SETTINGS) {
    const fromEnv = env[spec.env]
    const fromFlag = flags[spec.flag]
    let raw = spec.defaultValue
    let origin = `default of ${spec.flag}`
    if (fromFlag !== undefined) {
      raw = fromFlag
      origin = `--${spec.flag}`
    }
    if (fromEnv !== undefined) {
      raw = fromEnv
      origin = spec.env
    }
    out[spec.key] = parseSetting(spec, raw, origin)
  }
  const settings = out as unknown as Settings
  validateSettings(settings)
  return settings
}

function validateSettings(settings: Settings): void {
  if (!['tls12', 'tls13'].includes(settings.tlsMinVersion)) {
    throw new SettingsError(`AGENT_INJECT_TLS_MIN_VERSION: "${settings.tlsMinVersion}" is not accepted (tls12 or tls13)`)
  }
  if (!['map', 'json'].includes(settings.defaultTemplate)) {
    throw new SettingsError(`AGENT_INJECT_DEFAULT_TEMPLATE: "${settings.defaultTemplate}" is not accepted (map or json)`)
  }
  if (settings.tokenExpirationSeconds < 600) {
    throw new SettingsError(`AGENT_INJECT_TOKEN_EXPIRATION_SECONDS: ${settings.tokenExpirationSeconds} is below Kubernetes' minimum of 600`)
  }
  if (settings.maxBodyBytes < 3 * 1024 * 1024) {
    throw new SettingsError(`AGENT_INJECT_MAX_BODY_BYTES: ${settings.maxBodyBytes} is below the API server's 3 MiB object limit`)
  }
}
