// The Vault Agent configuration, with vault-k8s's keys and key order, so the
// stock Vault image runs it unmodified. Empty optional fields are left out.
import { MOUNT_PATH, PID_FILE, TOKEN_SINK } from './names.ts'
import type { AgentSpec } from './spec.ts'
import { tokenPath } from './token.ts'
import type { JsonObject } from './types.ts'

// Where the Kubernetes persistent cache reads a service-account token unless told.
const DEFAULT_SA_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token'

function compact(object: JsonObject): JsonObject {
  const out: JsonObject = {}
  for (const key in object) {
    const value = object[key]
    if (value !== undefined && value !== '' && value !== false) out[key] = value
  }
  return out
}

function autoAuth(spec: AgentSpec): JsonObject {
  // vault-k8s's precedence: token_path for every auth type, then the
  // auth-config-* keys (which may replace it, #456), then role, which wins over
  // auth-config-role: the pod logs in as the role its role annotation names.
  const config: JsonObject = {}
  if (spec.role !== '') config.role = spec.role
  config.token_path = tokenPath(spec.token)
  Object.assign(config, spec.authConfig)
  if (spec.role !== '') config.role = spec.role
  const method = compact({
    type: spec.authType,
    mount_path: spec.authPath,
    namespace: spec.vaultNamespace,
    min_backoff: spec.minBackoff,
    max_backoff: spec.maxBackoff,
    exit_on_err: spec.autoAuthExitOnErr,
  })
  method.config = config
  const sink: JsonObject[] = [{ type: 'file', config: { path: TOKEN_SINK } }]
  if (spec.injectToken) sink.push({ type: 'file', config: { path: `${spec.secretVolumePath}/token` } })
  return { method, sink }
}

function vault(spec: AgentSpec): JsonObject {
  return compact({
    address: spec.address,
    ca_cert: spec.caCert,
    ca_path: spec.caKey, // sic: vault-k8s maps ca-key to ca_path
    tls_skip_verify: spec.tlsSkipVerify,
    client_cert: spec.clientCert,
    client_key: spec.clientKey,
    tls_server_name: spec.tlsServerName,
  })
}

function templates(spec: AgentSpec): JsonObject[] {
  return spec.secrets.map((secret) =>
    compact({
      destination: secret.destination,
      contents: secret.contents,
      left_delimiter: secret.leftDelim,
      right_delimiter: secret.rightDelim,
      command: secret.command,
      source: secret.source,
      perms: secret.perms,
      error_on_missing_key: secret.errorOnMissingKey,
    }),
  )
}

// The cache listener belongs to the long-running agent (and to both when the
// cache is persistent). enable-quit adds the listener, and an empty cache
// block, wherever there is none, as vault-k8s does: without the cache the
// agent's token is not offered to callers of the listener.
function listenerAndCache(spec: AgentSpec, init: boolean): JsonObject {
  const cached = spec.persistentCache || (spec.cacheEnable && !spec.prePopulateOnly && !init)
  if (!cached && !spec.enableQuit) return {}
  const listener: JsonObject = { type: 'tcp', address: `127.0.0.1:${spec.cacheListenerPort}`, tls_disable: true }
  if (spec.enableQuit) listener.agent_api = { enable_quit: true }
  const cache: JsonObject = {}
  if (cached) cache.use_auto_auth_token = spec.cacheUseAutoAuthToken
  if (spec.persistentCache) cache.persist = persist(spec)
  return { listener: [listener], cache }
}

// The persistent cache checks its file with a service-account token, from the
// default path unless told. Where the agents' token is elsewhere (a projected
// token for the agents alone, a named volume), the pod has no token there and
// the agent would refuse to start: point it at the agents' token. A pod with
// the default mount gets vault-k8s's configuration unchanged.
function persist(spec: AgentSpec): JsonObject {
  const tokenFile = tokenPath(spec.token)
  return compact({
    type: 'kubernetes',
    path: MOUNT_PATH.cache,
    exit_on_err: spec.cacheExitOnErr,
    service_account_token_file: tokenFile === DEFAULT_SA_TOKEN_FILE ? undefined : tokenFile,
  })
}

export function agentConfig(spec: AgentSpec, init: boolean): JsonObject {
  const config: JsonObject = {
    auto_auth: autoAuth(spec),
    exit_after_auth: init,
    pid_file: PID_FILE,
    vault: vault(spec),
  }
  const rendered = templates(spec)
  if (rendered.length > 0) config.template = rendered
  Object.assign(config, listenerAndCache(spec, init))
  config.template_config = spec.templateConfig
  if (spec.disableIdleConnections.length > 0) config.disable_idle_connections = spec.disableIdleConnections
  if (spec.disableKeepAlives.length > 0) config.disable_keep_alives = spec.disableKeepAlives
  if (Object.keys(spec.telemetry).length > 0) config.telemetry = spec.telemetry
  return config
}

export function encodeConfig(config: JsonObject): string {
  return Buffer.from(JSON.stringify(config)).toString('base64')
}
