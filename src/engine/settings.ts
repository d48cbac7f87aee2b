// The injector-wide defaults of the injected agents: one table names each
// setting once (its field, the AGENT_INJECT_* environment variable vault-k8s
// reads, so an existing deployment's settings carry over, the matching flag,
// the value parser, the default and a one-line doc). The server's own settings
// are in webhook/settings.ts; src/settings.ts loads and checks both.
import * as v from './values.ts'
import type { ValueType } from './values.ts'

export interface SettingSpec<K extends string = string> {
  key: K
  env: string
  flag: string
  // The same parsers the annotations use: a value it refuses stops `serve`.
  type: ValueType<unknown>
  defaultValue: string
  doc: string
  // "" (from a flag) means "leave the field out" rather than a bad value. From
  // the environment "" always means unset, as in vault-k8s.
  emptyOmits?: boolean
  // Set on the settings vault-k8s does not have.
  ours?: boolean
}

export interface EngineSettings {
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
  // vault-injector's own settings (not in vault-k8s).
  projectServiceAccountToken: boolean
  tokenAudience: string
  tokenExpirationSeconds: number
  nativeSidecar: boolean
}

export interface SettingOptions {
  flag?: string
  env?: string
  emptyOmits?: boolean
  ours?: boolean
}

// A row: flag and env follow from the field name unless vault-k8s names them otherwise.
export function setting<K extends string>(key: K, type: ValueType<unknown>, defaultValue: string, doc: string, options: SettingOptions = {}): SettingSpec<K> {
  const flag = options.flag ?? key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())
  const env = options.env ?? 'AGENT_INJECT_' + flag.replace(/-/g, '_').toUpperCase()
  return {
    key,
    env,
    flag,
    type,
    defaultValue,
    doc,
    ...(options.emptyOmits ? { emptyOmits: true } : {}),
    ...(options.ours ? { ours: true } : {}),
  }
}

export const DEFAULT_VAULT_ADDRESS = 'https://vault.vault.svc:8200'

const omit = { emptyOmits: true }

export const ENGINE_SETTINGS: readonly SettingSpec<keyof EngineSettings>[] = [
  setting('vaultAddress', v.urlType, DEFAULT_VAULT_ADDRESS, 'Vault address the agents use (annotation vault.hashicorp.com/service overrides).', { flag: 'vault-address', env: 'AGENT_INJECT_VAULT_ADDR' }),
  setting('vaultCACertBytes', v.stringType, '', 'PEM CA certificate for Vault, passed to the agents as VAULT_CACERT_BYTES.', { flag: 'vault-cacert-bytes' }),
  setting('proxyAddress', v.urlType, '', 'HTTPS proxy for the agents (HTTPS_PROXY).', { env: 'AGENT_INJECT_PROXY_ADDR', ...omit }),
  setting('vaultNamespace', v.stringType, '', 'Vault Enterprise namespace for auto-auth.'),
  setting('vaultImage', v.imageType, 'hashicorp/vault:2.0.4', 'Image of the injected agents.'),
  setting('authType', v.nonEmptyType, 'kubernetes', 'Vault auth method type.', { flag: 'vault-auth-type' }),
  setting('authPath', v.nonEmptyType, 'auth/kubernetes', 'Mount path of the Vault auth method.', { flag: 'vault-auth-path' }),
  setting('revokeOnShutdown', v.boolType, 'false', 'Revoke the agent token when the sidecar stops.'),
  setting('runAsUser', v.uidType, '100', 'User ID the agents run as.'),
  setting('runAsGroup', v.uidType, '1000', 'Group ID the agents run as.'),
  setting('runAsSameUser', v.boolType, 'false', 'Run the agents as the first app container\'s user.'),
  setting('setSecurityContext', v.boolType, 'true', 'Give the agents a restrictive securityContext.'),
  setting('defaultTemplate', v.templateKindType, 'map', 'Default template for secrets without one: map or json.'),
  setting('cpuRequest', v.quantityType, '250m', 'CPU request of each agent ("" for none).', { flag: 'cpu-request', ...omit }),
  setting('memRequest', v.quantityType, '64Mi', 'Memory request of each agent ("" for none).', { flag: 'memory-request', env: 'AGENT_INJECT_MEM_REQUEST', ...omit }),
  setting('ephemeralRequest', v.quantityType, '', 'Ephemeral storage request of each agent.', { flag: 'ephemeral-storage-request', env: 'AGENT_INJECT_EPHEMERAL_REQUEST', ...omit }),
  setting('cpuLimit', v.quantityType, '500m', 'CPU limit of each agent ("" for none).', { flag: 'cpu-limit', ...omit }),
  setting('memLimit', v.quantityType, '128Mi', 'Memory limit of each agent ("" for none).', { flag: 'memory-limit', env: 'AGENT_INJECT_MEM_LIMIT', ...omit }),
  setting('ephemeralLimit', v.quantityType, '', 'Ephemeral storage limit of each agent.', { flag: 'ephemeral-storage-limit', env: 'AGENT_INJECT_EPHEMERAL_LIMIT', ...omit }),
  setting('templateConfigExitOnRetryFailure', v.boolType, 'true', 'template_config.exit_on_retry_failure.'),
  setting('templateConfigStaticSecretRenderInterval', v.durationOrSecondsType, '', 'template_config.static_secret_render_interval.', { flag: 'template-static-secret-render-interval', ...omit }),
  setting('templateConfigMaxConnectionsPerHost', v.nonNegativeIntType, '0', 'template_config.max_connections_per_host.', { flag: 'template-max-connections-per-host' }),
  setting('templateConfigLeaseRenewalThreshold', v.fractionType, '0', 'template_config.lease_renewal_threshold (applied, unlike vault-k8s).', { flag: 'template-lease-renewal-threshold' }),
  setting('authMinBackoff', v.durationType, '', 'auto_auth min_backoff (Go duration).', omit),
  setting('authMaxBackoff', v.durationType, '', 'auto_auth max_backoff (Go duration).', omit),
  setting('disableIdleConnections', v.stringType, '', 'Comma list for the agent\'s disable_idle_connections.'),
  setting('disableKeepAlives', v.stringType, '', 'Comma list for the agent\'s disable_keep_alives.'),
  setting('projectServiceAccountToken', v.boolType, 'false', 'Give every pod\'s agents their own projected token instead of reusing the app\'s.', { ours: true }),
  setting('tokenAudience', v.stringType, '', 'Audience of projected agent tokens ("" = the API server\'s).', { ours: true }),
  setting('tokenExpirationSeconds', v.tokenSecondsType, '3600', 'Lifetime of projected agent tokens, at least 600.', { ours: true }),
  setting('nativeSidecar', v.boolType, 'false', 'Run the agent as a native sidecar (Kubernetes 1.29+) by default.', { ours: true }),
]
