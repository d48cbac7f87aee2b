// The one table of annotations: name, scope, type, default and a one-line doc.
// Parsing, validation, defaults and docs/annotations.md all come from here.
import type { EngineSettings } from './settings.ts'
import * as v from './values.ts'
import type { ValueType } from './values.ts'

export const VAULT_PREFIX = 'vault.hashicorp.com/'
export const OUR_PREFIX = 'vault-injector.dev/'

// pod: one value per pod. secret: `<name>-<secret>` per secret. both: either.
// key: `<name>-<key>` free keys (auth-config-*, agent-telemetry-*).
export type Scope = 'pod' | 'secret' | 'both' | 'key'

export type Group = 'core' | 'secrets' | 'vault' | 'auth' | 'runtime' | 'cache' | 'telemetry' | 'vault-injector'

export interface AnnotationSpec<V extends ValueType<unknown> = ValueType<unknown>, S extends Scope = Scope, D extends boolean = boolean> {
  // Without prefix, e.g. "agent-limits-cpu"; for per-secret or keyed rows, the
  // part before "-<name>".
  name: string
  prefix: typeof VAULT_PREFIX | typeof OUR_PREFIX
  scope: S
  group: Group
  type: V
  // Injector-wide setting that supplies the default, if any.
  setting?: keyof EngineSettings
  // Literal default when no setting supplies one ("" = unset).
  defaultValue?: string
  // Whether a setting or a literal supplies a default (the record's property
  // is then never undefined).
  defaulted: D
  // "" is accepted and means "leave the field out" (vault-k8s PR #174).
  emptyOmits?: boolean
  // "" reads as the default (vault-k8s fills these in when they are empty).
  emptyIsDefault?: boolean
  doc: string
}

type Extra = Partial<Pick<AnnotationSpec, 'prefix' | 'setting' | 'defaultValue' | 'emptyOmits' | 'emptyIsDefault'>>
type HasDefault<E> = E extends { setting: string } ? true : E extends { defaultValue: string } ? true : false

function row<V extends ValueType<unknown>, S extends Scope, E extends Extra = {}>(
  name: string,
  scope: S,
  group: Group,
  type: V,
  doc: string,
  extra: E = {} as E,
): AnnotationSpec<V, S, HasDefault<E>> {
  const defaulted = (extra.setting !== undefined || extra.defaultValue !== undefined) as HasDefault<E>
  return { name, prefix: VAULT_PREFIX, scope, group, type, doc, defaulted, ...extra }
}

const str = v.stringType
const bool = v.boolType

// One property per annotation; the property name is how the engine reads it
// (see PodAnnotations and SecretAnnotations in read.ts).
export const ANNOTATION_TABLE = {
  // A. Core / control
  inject: row('agent-inject', 'pod', 'core', bool, 'Inject the Vault Agent when true.'),
  injectStatus: row('agent-inject-status', 'pod', 'core', str, 'Set to "injected" by the injector; any other value (e.g. "update") asks for re-injection.'),
  prePopulate: row('agent-pre-populate', 'pod', 'core', bool, 'Add the init container that renders secrets before the app starts.', { defaultValue: 'true' }),
  prePopulateOnly: row('agent-pre-populate-only', 'pod', 'core', bool, 'Only the init container, no sidecar (the pattern for Jobs). With agent-pre-populate "false" the pod is denied (vault-k8s would inject no agent at all).', { defaultValue: 'false' }),
  initFirst: row('agent-init-first', 'pod', 'core', bool, 'Run the init agent before the pod\'s other init containers.', { defaultValue: 'false' }),
  injectContainers: row('agent-inject-containers', 'pod', 'core', str, 'Comma list of app containers that get the secrets volume (default: all; split as written, no trimming; "" selects none, as in vault-k8s).'),
  image: row('agent-image', 'pod', 'core', str, 'Image of the agent containers.', { setting: 'vaultImage', emptyIsDefault: true }),
  configMap: row('agent-configmap', 'pod', 'core', v.objectNameType, 'ConfigMap holding config.hcl and config-init.hcl, used instead of a generated configuration.'),
  extraSecret: row('agent-extra-secret', 'pod', 'core', v.objectNameType, 'Secret mounted read-only at /vault/custom in the agents.'),
  copyVolumeMounts: row('agent-copy-volume-mounts', 'pod', 'core', str, 'Copy this container\'s volume mounts (except service-account ones) into the agents.'),
  jsonPatch: row('agent-json-patch', 'pod', 'core', v.jsonPatchType, 'RFC 6902 patch applied to the generated sidecar container.'),
  initJsonPatch: row('agent-init-json-patch', 'pod', 'core', v.jsonPatchType, 'RFC 6902 patch applied to the generated init container.'),
  shareProcessNamespace: row('agent-share-process-namespace', 'pod', 'core', bool, 'Set spec.shareProcessNamespace (only with pre-populate, as in vault-k8s).'),
  requestNamespace: row('agent-request-namespace', 'pod', 'core', str, 'Internal to vault-k8s (the request namespace); accepted and ignored.'),
  // B. Secrets / templates
  secret: row('agent-inject-secret', 'secret', 'secrets', str, 'Vault path of a secret; rendered to <secret-volume-path>/<name>. A blank path declares nothing (as in vault-k8s).'),
  template: row('agent-inject-template', 'secret', 'secrets', str, 'Inline Consul Template for the secret; on its own it also declares a secret.'),
  templateFile: row('agent-inject-template-file', 'secret', 'secrets', str, 'Template file (source) used when there is no inline template; on its own it also declares a secret (as in vault-k8s).'),
  defaultTemplate: row('agent-inject-default-template', 'pod', 'secrets', v.templateKindType, 'Template for secrets without one: map or json.', { setting: 'defaultTemplate' }),
  file: row('agent-inject-file', 'secret', 'secrets', str, 'File name (or relative path) of the rendered secret inside its volume. A path leaving the volume, or two secrets on one file, is denied (vault-k8s renders where the agent cannot write).'),
  perms: row('agent-inject-perms', 'secret', 'secrets', v.permsType, 'File mode of the rendered secret (octal).'),
  command: row('agent-inject-command', 'secret', 'secrets', str, 'Command the agent runs after rendering the secret.'),
  leftDelim: row('agent-template-left-delim', 'secret', 'secrets', str, 'Left template delimiter.', { defaultValue: '{{' }),
  rightDelim: row('agent-template-right-delim', 'secret', 'secrets', str, 'Right template delimiter.', { defaultValue: '}}' }),
  errorOnMissingKey: row('error-on-missing-key', 'secret', 'secrets', bool, 'Fail rendering when the template reads a missing key.', { defaultValue: 'false' }),
  secretVolumePath: row('secret-volume-path', 'both', 'secrets', v.absolutePathType, 'Mount path of the secrets volume; per secret, an extra volume at that path.', { defaultValue: '/vault/secrets' }),
  preserveSecretCase: row('preserve-secret-case', 'both', 'secrets', bool, 'Keep the case of secret names (global or per secret).', { defaultValue: 'false' }),
  injectToken: row('agent-inject-token', 'pod', 'secrets', bool, 'Also write the Vault token to <secret-volume-path>/token.', { defaultValue: 'false' }),
  exitOnRetryFailure: row('template-config-exit-on-retry-failure', 'pod', 'secrets', bool, 'template_config.exit_on_retry_failure.', { setting: 'templateConfigExitOnRetryFailure' }),
  staticSecretRenderInterval: row('template-static-secret-render-interval', 'pod', 'secrets', v.durationOrSecondsType, 'template_config.static_secret_render_interval.', { setting: 'templateConfigStaticSecretRenderInterval', emptyOmits: true }),
  maxConnectionsPerHost: row('template-max-connections-per-host', 'pod', 'secrets', v.nonNegativeIntType, 'template_config.max_connections_per_host.', { setting: 'templateConfigMaxConnectionsPerHost' }),
  leaseRenewalThreshold: row('template-lease-renewal-threshold', 'pod', 'secrets', v.fractionType, 'template_config.lease_renewal_threshold.', { setting: 'templateConfigLeaseRenewalThreshold' }),
  // C. Vault connection / TLS
  service: row('service', 'pod', 'vault', v.urlType, 'Vault address the agents use.', { setting: 'vaultAddress' }),
  vaultNamespace: row('namespace', 'pod', 'vault', str, 'Vault Enterprise namespace for auto-auth.', { setting: 'vaultNamespace' }),
  proxyAddress: row('proxy-address', 'pod', 'vault', v.urlType, 'HTTPS proxy for the agents.', { setting: 'proxyAddress', emptyOmits: true }),
  tlsSkipVerify: row('tls-skip-verify', 'pod', 'vault', bool, 'Skip verification of Vault\'s certificate (unsafe).', { defaultValue: 'false' }),
  tlsServerName: row('tls-server-name', 'pod', 'vault', str, 'Server name to verify Vault\'s certificate against.'),
  tlsSecret: row('tls-secret', 'pod', 'vault', v.objectNameType, 'Secret mounted read-only at /vault/tls in the agents.'),
  caCert: row('ca-cert', 'pod', 'vault', str, 'Path of the CA certificate for Vault (vault.ca_cert).'),
  caKey: row('ca-key', 'pod', 'vault', str, 'Path of a CA directory (written to vault.ca_path, as vault-k8s does).'),
  clientCert: row('client-cert', 'pod', 'vault', str, 'Path of the client certificate for Vault.'),
  clientKey: row('client-key', 'pod', 'vault', str, 'Path of the client key for Vault.'),
  clientMaxRetries: row('client-max-retries', 'pod', 'vault', v.nonNegativeIntType, 'VAULT_MAX_RETRIES for the agents.'),
  clientTimeout: row('client-timeout', 'pod', 'vault', v.durationOrSecondsType, 'VAULT_CLIENT_TIMEOUT for the agents.'),
  // D. Auth
  role: row('role', 'pod', 'auth', str, 'Vault role to log in as (required for kubernetes auth unless auth-config-role is set); wins over auth-config-role, as in vault-k8s.'),
  authType: row('auth-type', 'pod', 'auth', str, 'Vault auth method type ("" is refused, as in vault-k8s).', { setting: 'authType' }),
  authPath: row('auth-path', 'pod', 'auth', str, 'Mount path of the auth method.', { setting: 'authPath' }),
  authConfig: row('auth-config', 'key', 'auth', str, 'auto_auth.method.config.<key> ("-" becomes "_").'),
  authMinBackoff: row('auth-min-backoff', 'pod', 'auth', v.durationType, 'auto_auth min_backoff.', { setting: 'authMinBackoff', emptyOmits: true }),
  authMaxBackoff: row('auth-max-backoff', 'pod', 'auth', v.durationType, 'auto_auth max_backoff.', { setting: 'authMaxBackoff', emptyOmits: true }),
  autoAuthExitOnErr: row('agent-auto-auth-exit-on-err', 'pod', 'auth', bool, 'auto_auth.method.exit_on_err.', { defaultValue: 'false' }),
  serviceAccountTokenVolumeName: row('agent-service-account-token-volume-name', 'pod', 'auth', v.objectNameType, 'Volume holding the service-account token the agents log in with.'),
  // E. Resources / security / runtime
  limitsCpu: row('agent-limits-cpu', 'pod', 'runtime', v.quantityType, 'CPU limit of each agent ("" for none).', { setting: 'cpuLimit', emptyOmits: true }),
  limitsMem: row('agent-limits-mem', 'pod', 'runtime', v.quantityType, 'Memory limit of each agent ("" for none).', { setting: 'memLimit', emptyOmits: true }),
  limitsEphemeral: row('agent-limits-ephemeral', 'pod', 'runtime', v.quantityType, 'Ephemeral storage limit of each agent.', { setting: 'ephemeralLimit', emptyOmits: true }),
  requestsCpu: row('agent-requests-cpu', 'pod', 'runtime', v.quantityType, 'CPU request of each agent ("" for none).', { setting: 'cpuRequest', emptyOmits: true }),
  requestsMem: row('agent-requests-mem', 'pod', 'runtime', v.quantityType, 'Memory request of each agent ("" for none).', { setting: 'memRequest', emptyOmits: true }),
  requestsEphemeral: row('agent-requests-ephemeral', 'pod', 'runtime', v.quantityType, 'Ephemeral storage request of each agent.', { setting: 'ephemeralRequest', emptyOmits: true }),
  runAsUser: row('agent-run-as-user', 'pod', 'runtime', v.uidType, 'User ID of the agents. "" is denied (vault-k8s reads it as 0: root).', { setting: 'runAsUser' }),
  runAsGroup: row('agent-run-as-group', 'pod', 'runtime', v.uidType, 'Group ID of the agents. "" is denied (vault-k8s reads it as 0: root).', { setting: 'runAsGroup' }),
  runAsSameUser: row('agent-run-as-same-user', 'pod', 'runtime', bool, 'Run the agents as the first app container\'s runAsUser.', { setting: 'runAsSameUser' }),
  setSecurityContext: row('agent-set-security-context', 'pod', 'runtime', bool, 'Give the agents a restrictive securityContext.', { setting: 'setSecurityContext' }),
  revokeOnShutdown: row('agent-revoke-on-shutdown', 'pod', 'runtime', bool, 'Revoke the agent token when the sidecar stops.', { setting: 'revokeOnShutdown' }),
  revokeGrace: row('agent-revoke-grace', 'pod', 'runtime', v.nonNegativeIntType, 'Seconds to wait before revoking on shutdown.', { defaultValue: '5' }),
  goMaxProcs: row('go-max-procs', 'pod', 'runtime', v.nonNegativeIntType, 'GOMAXPROCS for the agents.'),
  logLevel: row('log-level', 'pod', 'runtime', v.caseInsensitiveEnumType(['trace', 'debug', 'notice', 'info', 'warn', 'warning', 'err', 'error']), 'Agent log level, any case, as the Vault Agent reads it; passed as written.', { defaultValue: 'info' }),
  logFormat: row('log-format', 'pod', 'runtime', v.caseInsensitiveEnumType(['standard', 'json']), 'Agent log format, any case; passed as written.', { defaultValue: 'standard' }),
  disableIdleConnections: row('agent-disable-idle-connections', 'pod', 'runtime', v.listType, 'Comma list for disable_idle_connections (auto-auth, caching, templating, proxying).', { setting: 'disableIdleConnections' }),
  disableKeepAlives: row('agent-disable-keep-alives', 'pod', 'runtime', v.listType, 'Comma list for disable_keep_alives.', { setting: 'disableKeepAlives' }),
  // F. Cache / listener
  cacheEnable: row('agent-cache-enable', 'pod', 'cache', bool, 'Run the agent cache and a listener on 127.0.0.1 in the sidecar.', { defaultValue: 'false' }),
  cacheListenerPort: row('agent-cache-listener-port', 'pod', 'cache', v.portType, 'Port of the cache listener.', { defaultValue: '8200' }),
  cacheUseAutoAuthToken: row('agent-cache-use-auto-auth-token', 'pod', 'cache', v.autoAuthTokenType, 'cache.use_auto_auth_token (true, false or force).', { defaultValue: 'true' }),
  cacheExitOnErr: row('agent-cache-exit-on-err', 'pod', 'cache', bool, 'Exit when the persistent cache cannot be restored.', { defaultValue: 'false' }),
  enableQuit: row('agent-enable-quit', 'pod', 'cache', bool, 'Enable the agent\'s /agent/v1/quit endpoint on the listener.', { defaultValue: 'false' }),
  // G. Telemetry
  telemetry: row('agent-telemetry', 'key', 'telemetry', str, 'telemetry.<key> ("-" becomes "_"); JSON values are decoded.'),
  // vault-injector's own
  nativeSidecar: row('native-sidecar', 'pod', 'vault-injector', bool, 'Run one agent as a native sidecar (init container with restartPolicy: Always) gated by a startup probe on the rendered files.', { prefix: OUR_PREFIX, setting: 'nativeSidecar' }),
  tokenAudience: row('token-audience', 'pod', 'vault-injector', str, 'Give the agents their own projected service-account token with this audience.', { prefix: OUR_PREFIX, setting: 'tokenAudience' }),
  tokenExpirationSeconds: row('token-expiration-seconds', 'pod', 'vault-injector', v.tokenSecondsType, 'Lifetime of the agents\' projected token, in seconds (600 or more).', { prefix: OUR_PREFIX, setting: 'tokenExpirationSeconds' }),
} as const

export type AnnotationTable = typeof ANNOTATION_TABLE
export type AnnotationKey = keyof AnnotationTable

// The rows in table order (docs, matching).
export const ANNOTATIONS: readonly AnnotationSpec[] = Object.values(ANNOTATION_TABLE)

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
