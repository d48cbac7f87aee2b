// The server's own settings (listen address, logs, TLS, limits, leader
// election), in the same table form as the agents' defaults.
import { statSync } from 'node:fs'
import { setting, type SettingSpec } from '../engine/settings.ts'
import * as v from '../engine/values.ts'
import { cipherList } from '../tls/ciphers.ts'

export interface ServerSettings {
  listen: string
  logLevel: string
  logFormat: string
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
  policyFile: string
  maxBodyBytes: number
  maxConcurrentRequests: number
  csiRestartOnRotation: boolean
  csiRestartMinIntervalSeconds: number
  csiRestartNamespaces: string
  drainSeconds: number
}

export function parseListen(listen: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen.trim())
  const port = Number(match?.[3])
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) return undefined
  const host = match[1] ?? match[2] ?? ''
  return { host: host === '' ? '::' : host, port }
}

// Namespace names are DNS labels: lowercase letters, digits and "-", at most 63.
export const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
// A name given twice is watched once (two watches of one namespace would never both count as listed).
export const namespaceList = (raw: string): string[] => [...new Set(raw.split(',').map((n) => n.trim()).filter((n) => n !== ''))]
const namespaceListType = v.textType((raw) => namespaceList(raw).every((n) => NAMESPACE_NAME.test(n)), 'is not a comma list of namespace names')

const listenType = v.textType((raw) => parseListen(raw) !== undefined, 'is not host:port (e.g. :8080, 127.0.0.1:8080)')

// Certificate, key and policy files are read at start: a path that is not a
// file is a setting error, not a failure later on.
const existingFileType = v.textType((raw) => {
  try {
    return statSync(raw).isFile()
  } catch {
    return false
  }
}, 'is not an existing file')

// vault-k8s's log levels (hclog's names, any case), the same list as the
// agents' log-level annotation; pino's names for them.
const LOG_LEVELS: Record<string, string> = { trace: 'trace', debug: 'debug', notice: 'info', info: 'info', warn: 'warn', warning: 'warn', err: 'error', error: 'error' }
export function pinoLevel(level: string): string {
  return LOG_LEVELS[level.trim().toLowerCase()] ?? 'info'
}
const logLevelType = v.caseInsensitiveEnumType(Object.keys(LOG_LEVELS))

const cipherSuitesType: v.ValueType<string> = {
  parse(raw) {
    try {
      cipherList(raw)
      return raw
    } catch {
      return undefined
    }
  },
  accepts: 'is not a comma list of cipher suites this server supports: ECDHE key exchange with an AEAD cipher, GCM or ChaCha20-Poly1305 (Go names such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or OpenSSL names such as ECDHE-RSA-AES128-GCM-SHA256); static-RSA and CBC suites are refused',
}

// The API server refuses objects over 3 MiB, so a smaller limit would refuse real pods.
const MIN_BODY_BYTES = 3 * 1024 * 1024

export const SERVER_SETTINGS: readonly SettingSpec<keyof ServerSettings>[] = [
  setting('listen', listenType, ':8080', 'Address the HTTPS server listens on.'),
  setting('logLevel', logLevelType, 'info', 'Log level: trace, debug, info, warn, error.'),
  setting('logFormat', v.caseInsensitiveEnumType(['standard', 'json']), 'json', 'Log format. Logs are always JSON lines; "standard" is accepted for compatibility.'),
  setting('tlsAuto', v.objectNameType, '', 'Name of the MutatingWebhookConfiguration whose caBundle auto-TLS keeps current.'),
  setting('tlsAutoHosts', v.stringType, '', 'Comma list of DNS names for the auto-TLS serving certificate.'),
  setting('tlsCertFile', existingFileType, '', 'Serving certificate file (reloaded when it changes).', { flag: 'tls-cert-file' }),
  setting('tlsKeyFile', existingFileType, '', 'Serving key file (reloaded when it changes).', { flag: 'tls-key-file' }),
  setting('tlsMinVersion', v.enumType(['tls12', 'tls13']), 'tls12', 'Lowest TLS version served: tls12 or tls13.'),
  setting('tlsCipherSuites', cipherSuitesType, '', 'Comma list of TLS 1.2 cipher suites, Go or OpenSSL names; ECDHE with AEAD only (the default is all of those).'),
  setting('telemetryPath', v.textType((raw) => raw.startsWith('/'), 'is not a URL path (e.g. /metrics)'), '/metrics', 'Path of the Prometheus metrics endpoint.'),
  setting('useLeaderElector', v.boolType, 'false', 'Elect one replica (Lease, else the ConfigMap vault-k8s-leader) to manage auto-TLS; without it the certificate stays in memory.'),
  setting('namespace', v.objectNameType, '', 'Namespace the injector runs in (default: the service account\'s namespace file, else "default").', { env: 'NAMESPACE' }),
  setting('podName', v.stringType, '', 'Name of the injector pod (leader identity).', { env: 'POD_NAME' }),
  setting('policyFile', existingFileType, '', 'Policy file enforced at admission, reloaded when it changes.', { ours: true }),
  setting('maxBodyBytes', v.integerType(MIN_BODY_BYTES, 2 ** 31 - 1, 'is not a byte count from 3 MiB (3145728), the API server\'s object limit'), String(6 * 1024 * 1024), 'Largest AdmissionReview body accepted, in bytes.', { ours: true }),
  setting('maxConcurrentRequests', v.integerType(1, 2 ** 31 - 1, 'is not a whole number from 1'), '256', 'Reviews processed at once; more are answered 503.', { ours: true }),
  setting('csiRestartOnRotation', v.boolType, 'false', 'Roll Deployments, StatefulSets and DaemonSets annotated vault-injector.dev/restart-on-secret-change when their CSI-mounted secrets change (needs the Secrets Store CSI Driver).', { ours: true }),
  setting('csiRestartNamespaces', namespaceListType, '', 'Comma list of namespaces whose workloads may be rolled: the status objects are watched only there, so namespaced Roles suffice (empty: every namespace, a ClusterRole).', { ours: true }),
  setting('csiRestartMinIntervalSeconds', v.integerType(0, 2 ** 31 - 1, 'is not a whole number of seconds'), '300', 'Least time between two such restarts of one workload, in seconds.', { ours: true }),
  setting('drainSeconds', v.integerType(0, 60, 'is not a whole number of seconds from 0 to 60'), '5', 'After SIGTERM: seconds of answering with readiness failed before the listener closes.', { ours: true }),
]
