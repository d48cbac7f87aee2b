// The one table of annotations: name, scope, type, default and a one-line doc.
// Parsing, validation, defaults and docs/annotations.md all come from here.
import type { Settings } from './settings.ts'
import * as v from './values.ts'
import type { ValueType } from './values.ts'

export const VAULT_PREFIX = 'vault.hashicorp.com/'
export const OUR_PREFIX = 'vault-injector.dev/'

// pod: one value per pod. secret: `<name>-<secret>` per secret. both: either.
// key: `<name>-<key>` free keys (auth-config-*, agent-telemetry-*).
export type Scope = 'pod' | 'secret' | 'both' | 'key'

export type Group = 'core' | 'secrets' | 'vault' | 'auth' | 'runtime' | 'cache' | 'telemetry' | 'vault-injector'

export interface AnnotationSpec {
  // Without prefix, e.g. "agent-limits-cpu"; for per-secret or keyed rows, the
  // part before "-<name>".
  name: string
  prefix: typeof VAULT_PREFIX | typeof OUR_PREFIX
  scope: Scope
  group: Group
  type: ValueType<unknown>
  // Injector-wide setting that supplies the default, if any.
  setting?: keyof Settings
  // Literal default when no setting supplies one ("" = unset).
  defaultValue?: string
  // "" is accepted and means "leave the field out" (vault-k8s PR #174).
  emptyOmits?: boolean
  doc: string
}

function row(
  name: string,
  scope: Scope,
  group: Group,
  type: ValueType<unknown>,
  doc: string,
  extra: Partial<AnnotationSpec> = {},
): AnnotationSpec {
  return { name, prefix: VAULT_PREFIX, scope, group, type, doc, ...extra }
}

const str = v.stringType
const bool = v.boolType

export const ANNOTATIONS: readonly AnnotationSpec[] = [
  // A. Core / control
  row('agent-inject', 'pod', 'core', bool, 'Inject the Vault Agent when true.'),
  row('agent-inject-status', 'pod', 'core', str, 'Set to "injected" by the injector; any other value (e.g. "update") asks for re-injection.'),
  row('agent-pre-populate', 'pod', 'core', bool, 'Add the init container that renders secrets before the app starts.', { defaultValue: 'true' }),
  row('agent-pre-populate-only', 'pod', 'core', bool, 'Only the init container, no sidecar (the pattern for Jobs).', { defaultValue: 'false' }),
  row('agent-init-first', 'pod', 'core', bool, 'Run the init agent before the pod\'s other init containers.', { defaultValue: 'false' }),
  row('agent-inject-containers', 'pod', 'core', v.listType, 'Comma list of app containers that get the secrets volume (default: all).'),
  row('agent-image', 'pod', 'core', str, 'Image of the agent containers.', { setting: 'vaultImage' }),
  row('agent-configmap', 'pod', 'core', v.objectNameType, 'ConfigMap holding config.hcl and config-init.hcl, used instead of a generated configuration.'),
  row('agent-extra-secret', 'pod', 'core', v.objectNameType, 'Secret mounted read-only at /vault/custom in the agents.'),
  row('agent-copy-volume-mounts', 'pod', 'core', str, 'Copy this container\'s volume mounts (except service-account ones) into the agents.'),
  row('agent-json-patch', 'pod', 'core', v.jsonPatchType, 'RFC 6902 patch applied to the generated sidecar container.'),
  row('agent-init-json-patch', 'pod', 'core', v.jsonPatchType, 'RFC 6902 patch applied to the generated init container.'),
  row('agent-share-process-namespace', 'pod', 'core', bool, 'Set spec.shareProcessNamespace (only with pre-populate, as in vault-k8s).'),
  row('agent-request-namespace', 'pod', 'core', str, 'Internal to vault-k8s (the request namespace); accepted and ignored.'),
  // B. Secrets / templates
  row('agent-inject-secret', 'secret', 'secrets', str, 'Vault path of a secret; rendered to <secret-volume-path>/<name>.'),
  row('agent-inject-template', 'secret', 'secrets', str, 'Inline Consul Template for the secret; on its own it also declares a secret.'),
  row('agent-inject-template-file', 'secret', 'secrets', str, 'Template file (source) used when there is no inline template.'),
  row('agent-inject-default-template', 'pod', 'secrets', v.enumType(['map', 'json']), 'Template for secrets without one: map or json.', { setting: 'defaultTemplate' }),
  row('agent-inject-file', 'secret', 'secrets', str, 'File name (or relative path) of the rendered secret inside its volume.'),
  row('agent-inject-perms', 'secret', 'secrets', v.permsType, 'File mode of the rendered secret (octal).'),
  row('agent-inject-command', 'secret', 'secrets', str, 'Command the agent runs after rendering the secret.'),
  row('agent-template-left-delim', 'secret', 'secrets', str, 'Left template delimiter.', { defaultValue: '{{' }),
  row('agent-template-right-delim', 'secret', 'secrets', str, 'Right template delimiter.', { defaultValue: '}}' }),
  row('error-on-missing-key', 'secret', 'secrets', bool, 'Fail rendering when the template reads a missing key.', { defaultValue: 'false' }),
  row('secret-volume-path', 'both', 'secrets', v.absolutePathType, 'Mount path of the secrets volume; per secret, an extra volume at that path.', { defaultValue: '/vault/secrets' }),
  row('preserve-secret-case', 'both', 'secrets', bool, 'Keep the case of secret names (global or per secret).', { defaultValue: 'false' }),
  row('agent-inject-token', 'pod', 'secrets', bool, 'Also write the Vault token to <secret-volume-path>/token.', { defaultValue: 'false' }),
  row('template-config-exit-on-retry-failure', 'pod', 'secrets', bool, 'template_config.exit_on_retry_failure.', { setting: 'templateConfigExitOnRetryFailure' }),
  row('template-static-secret-render-interval', 'pod', 'secrets', v.durationOrSecondsType, 'template_config.static_secret_render_interval.', { setting: 'templateConfigStaticSecretRenderInterval', emptyOmits: true }),
  row('template-max-connections-per-host', 'pod', 'secrets', v.nonNegativeIntType, 'template_config.max_connections_per_host.', { setting: 'templateConfigMaxConnectionsPerHost' }),
  row('template-lease-renewal-threshold', 'pod', 'secrets', v.fractionType, 'template_config.lease_renewal_threshold.', { setting: 'templateConfigLeaseRenewalThreshold' }),
  // C. Vault connection / TLS
  row('service', 'pod', 'vault', v.urlType, 'Vault address the agents use.', { setting: 'vaultAddress' }),
  row('namespace', 'pod', 'vault', str, 'Vault Enterprise namespace for auto-auth.', { setting: 'vaultNamespace' }),
  row('proxy-address', 'pod', 'vault', v.urlType, 'HTTPS proxy for the agents.', { setting: 'proxyAddress', emptyOmits: true }),
  row('tls-skip-verify', 'pod', 'vault', bool, 'Skip verification of Vault\'s certificate (unsafe).', { defaultValue: 'false' }),
  row('tls-server-name', 'pod', 'vault', str, 'Server name to verify Vault\'s certificate against.'),
  row('tls-secret', 'pod', 'vault', v.objectNameType, 'Secret mounted read-only at /vault/tls in the agents.'),
  row('ca-cert', 'pod', 'vault', str, 'Path of the CA certificate for Vault (vault.ca_cert).'),
  row('ca-key', 'pod', 'vault', str, 'Path of a CA directory (written to vault.ca_path, as vault-k8s does).'),
  row('client-cert', 'pod', 'vault', str, 'Path of the client certificate for Vault.'),
  row('client-key', 'pod', 'vault', str, 'Path of the client key for Vault.'),
  row('client-max-retries', 'pod', 'vault', v.nonNegativeIntType, 'VAULT_MAX_RETRIES for the agents.'),
  row('client-timeout', 'pod', 'vault', v.durationOrSecondsType, 'VAULT_CLIENT_TIMEOUT for the agents.'),
  // D. Auth
  row('role', 'pod', 'auth', str, 'Vault role for Kubernetes auth (required for kubernetes auth).'),
  row('auth-type', 'pod', 'auth', str, 'Vault auth method type.', { setting: 'authType' }),
  row('auth-path', 'pod', 'auth', str, 'Mount path of the auth method.', { setting: 'authPath' }),
  row('auth-config', 'key', 'auth', str, 'auto_auth.method.config.<key> ("-" becomes "_").'),
  row('auth-min-backoff', 'pod', 'auth', v.durationType, 'auto_auth min_backoff.', { setting: 'authMinBackoff', emptyOmits: true }),
  row('auth-max-backoff', 'pod', 'auth', v.durationType, 'auto_auth max_backoff.', { setting: 'authMaxBackoff', emptyOmits: true }),
  row('agent-auto-auth-exit-on-err', 'pod', 'auth', bool, 'auto_auth.method.exit_on_err.', { defaultValue: 'false' }),
  row('agent-service-account-token-volume-name', 'pod', 'auth', v.objectNameType, 'Volume holding the service-account token the agents log in with.'),
  // E. Resources / security / runtime
  row('agent-limits-cpu', 'pod', 'runtime', v.quantityType, 'CPU limit of each agent ("" for none).', { setting: 'cpuLimit', emptyOmits: true }),
  row('agent-limits-mem', 'pod', 'runtime', v.quantityType, 'Memory limit of each agent ("" for none).', { setting: 'memLimit', emptyOmits: true }),
  row('agent-limits-ephemeral', 'pod', 'runtime', v.quantityType, 'Ephemeral storage limit of each agent.', { setting: 'ephemeralLimit', emptyOmits: true }),
  row('agent-requests-cpu', 'pod', 'runtime', v.quantityType, 'CPU request of each agent ("" for none).', { setting: 'cpuRequest', emptyOmits: true }),
  row('agent-requests-mem', 'pod', 'runtime', v.quantityType, 'Memory request of each agent ("" for none).', { setting: 'memRequest', emptyOmits: true }),
  row('agent-requests-ephemeral', 'pod', 'runtime', v.quantityType, 'Ephemeral storage request of each agent.', { setting: 'ephemeralRequest', emptyOmits: true }),
  row('agent-run-as-user', 'pod', 'runtime', v.uidType, 'User ID of the agents.', { setting: 'runAsUser' }),
  row('agent-run-as-group', 'pod', 'runtime', v.uidType, 'Group ID of the agents.', { setting: 'runAsGroup' }),
  row('agent-run-as-same-user', 'pod', 'runtime', bool, 'Run the agents as the first app container\'s runAsUser.', { setting: 'runAsSameUser' }),
  row('agent-set-security-context', 'pod', 'runtime', bool, 'Give the agents a restrictive securityContext.', { setting: 'setSecurityContext' }),
  row('agent-revoke-on-shutdown', 'pod', 'runtime', bool, 'Revoke the agent token when the sidecar stops.', { setting: 'revokeOnShutdown' }),
  row('agent-revoke-grace', 'pod', 'runtime', v.nonNegativeIntType, 'Seconds to wait before revoking on shutdown.', { defaultValue: '5' }),
  row('go-max-procs', 'pod', 'runtime', v.nonNegativeIntType, 'GOMAXPROCS for the agents.'),
  row('log-level', 'pod', 'runtime', v.enumType(['trace', 'debug', 'info', 'warn', 'error']), 'Agent log level.', { defaultValue: 'info' }),
  row('log-format', 'pod', 'runtime', v.enumType(['standard', 'json']), 'Agent log format.', { defaultValue: 'standard' }),
  row('agent-disable-idle-connections', 'pod', 'runtime', v.listType, 'Comma list for disable_idle_connections (auto-auth, caching, templating, proxying).', { setting: 'disableIdleConnections' }),
  row('agent-disable-keep-alives', 'pod', 'runtime', v.listType, 'Comma list for disable_keep_alives.', { setting: 'disableKeepAlives' }),
  // F. Cache / listener
  row('agent-cache-enable', 'pod', 'cache', bool, 'Run the agent cache and a listener on 127.0.0.1 in the sidecar.', { defaultValue: 'false' }),
  row('agent-cache-listener-port', 'pod', 'cache', v.portType, 'Port of the cache listener.', { defaultValue: '8200' }),
  row('agent-cache-use-auto-auth-token', 'pod', 'cache', v.autoAuthTokenType, 'cache.use_auto_auth_token (true, false or force).', { defaultValue: 'true' }),
  row('agent-cache-exit-on-err', 'pod', 'cache', bool, 'Exit when the persistent cache cannot be restored.', { defaultValue: 'false' }),
  row('agent-enable-quit', 'pod', 'cache', bool, 'Enable the agent\'s /agent/v1/quit endpoint on the listener.', { defaultValue: 'false' }),
  // G. Telemetry
  row('agent-telemetry', 'key', 'telemetry', str, 'telemetry.<key> ("-" becomes "_"); JSON values are decoded.'),
  // vault-injector's own
  { name: 'native-sidecar', prefix: OUR_PREFIX, scope: 'pod', group: 'vault-injector', type: bool, setting: 'nativeSidecar', doc: 'Run one agent as a native sidecar (init container with restartPolicy: Always) gated by a startup probe on the rendered files.' },
  { name: 'token-audience', prefix: OUR_PREFIX, scope: 'pod', group: 'vault-injector', type: str, setting: 'tokenAudience', doc: 'Give the agents their own projected service-account token with this audience.' },
  { name: 'token-expiration-seconds', prefix: OUR_PREFIX, scope: 'pod', group: 'vault-injector', type: v.tokenSecondsType, setting: 'tokenExpirationSeconds', doc: 'Lifetime of the agents\' projected token, in seconds (600 or more).' },
]

export function fullName(spec: AnnotationSpec): string {
  return spec.prefix + spec.name
}

const BY_FULL_NAME = new Map(ANNOTATIONS.filter((a) => a.scope !== 'secret' && a.scope !== 'key').map((a) => [fullName(a), a]))
// Longest first, so "agent-inject-template-file-x" is not read as a template "file-x".
const PREFIX_ROWS = ANNOTATIONS.filter((a) => a.scope !== 'pod')
  .sort((a, b) => b.name.length - a.name.length)
  .map((spec) => ({ spec, head: fullName(spec) + '-' }))

export interface AnnotationMatch {
  spec: AnnotationSpec
  // The part after "<name>-" for per-secret and keyed annotations.
  suffix?: string
}

// Which table row an annotation key belongs to, if any.
export function matchAnnotation(key: string): AnnotationMatch | undefined {
  const exact = BY_FULL_NAME.get(key)
  if (exact) return { spec: exact }
  for (const { spec, head } of PREFIX_ROWS) {
    if (key.length > head.length && key.startsWith(head)) return { spec, suffix: key.slice(head.length) }
  }
  return undefined
}

export function isOurs(key: string): boolean {
  return key.startsWith(VAULT_PREFIX) || key.startsWith(OUR_PREFIX)
}
