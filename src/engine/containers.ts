// The injected parts: agent containers, their volumes and mounts, with
// vault-k8s's names, paths and order.
import { jsonClone } from './clone.ts'
import fastJsonPatch from 'fast-json-patch'
import { agentConfig, encodeConfig } from './config.ts'
import { CONTAINER, customSecretsVolume, isOwnedVolume, MOUNT_PATH, TOKEN_SINK, VOLUME } from './names.ts'
import type { AgentSpec } from './spec.ts'
import type { JsonObject } from './types.ts'

const memoryVolume = (name: string): JsonObject => ({ name, emptyDir: { medium: 'Memory' } })

// Secret mount paths other than the main one, each with its own volume.
export function customMountPaths(spec: AgentSpec): string[] {
  const paths = new Set(spec.secrets.map((s) => s.mountPath).filter((p) => p !== spec.secretVolumePath))
  return [...paths].sort()
}

export function secretMounts(spec: AgentSpec): JsonObject[] {
  const mounts: JsonObject[] = [{ name: VOLUME.secrets, mountPath: spec.secretVolumePath }]
  customMountPaths(spec).forEach((mountPath, i) => mounts.push({ name: customSecretsVolume(i), mountPath }))
  return mounts
}

export function volumes(spec: AgentSpec): JsonObject[] {
  const out: JsonObject[] = []
  if (spec.prePopulate && !spec.native) out.push(memoryVolume(VOLUME.homeInit))
  if (!spec.prePopulateOnly) out.push(memoryVolume(VOLUME.homeSidecar))
  for (const mount of secretMounts(spec)) out.push(memoryVolume(String(mount.name)))
  if (spec.configMap) out.push({ name: VOLUME.config, configMap: { name: spec.configMap } })
  if (spec.extraSecret) out.push({ name: VOLUME.extraSecrets, secret: { secretName: spec.extraSecret } })
  if (spec.tlsSecret) out.push({ name: VOLUME.tlsSecrets, secret: { secretName: spec.tlsSecret } })
  if (spec.persistentCache) out.push(memoryVolume(VOLUME.cache))
  if (spec.token.volume) out.push(spec.token.volume)
  return out
}

function copiedMounts(spec: AgentSpec, pod: JsonObject): JsonObject[] {
  if (!spec.copyVolumeMountsFrom) return []
  const podSpec = pod.spec as JsonObject
  const all = [...((podSpec.containers as JsonObject[]) ?? []), ...((podSpec.initContainers as JsonObject[]) ?? [])]
  const source = all.find((c) => c.name === spec.copyVolumeMountsFrom)
  const mounts = Array.isArray(source?.volumeMounts) ? (source.volumeMounts as JsonObject[]) : []
  return mounts.filter((m) => !String(m.mountPath).includes('serviceaccount') && !isOwnedVolume(String(m.name))).map((m) => jsonClone(m))
}

// Mounts shared by both agents after their home and token mounts.
function commonMounts(spec: AgentSpec, pod: JsonObject): JsonObject[] {
  const mounts: JsonObject[] = []
  // The IRSA token may already be the agents' token mount (same volume).
  if (spec.irsaMount && spec.irsaMount.name !== spec.token.volumeName) mounts.push({ name: spec.irsaMount.name, mountPath: spec.irsaMount.mountPath, readOnly: true })
  mounts.push(...secretMounts(spec))
  if (spec.extraSecret) mounts.push({ name: VOLUME.extraSecrets, mountPath: MOUNT_PATH.extraSecrets, readOnly: true })
  mounts.push(...copiedMounts(spec, pod))
  if (spec.configMap) mounts.push({ name: VOLUME.config, mountPath: MOUNT_PATH.configMap, readOnly: true })
  if (spec.tlsSecret) mounts.push({ name: VOLUME.tlsSecrets, mountPath: MOUNT_PATH.tlsSecrets, readOnly: true })
  if (spec.persistentCache) mounts.push({ name: VOLUME.cache, mountPath: MOUNT_PATH.cache })
  return mounts
}

function tokenMount(spec: AgentSpec): JsonObject {
  return { name: spec.token.volumeName, mountPath: spec.token.mountPath, readOnly: true }
}

function fieldEnv(name: string, fieldPath: string): JsonObject {
  return { name, valueFrom: { fieldRef: { fieldPath } } }
}

function env(spec: AgentSpec, init: boolean): JsonObject[] {
  const out: JsonObject[] = [fieldEnv('NAMESPACE', 'metadata.namespace'), fieldEnv('HOST_IP', 'status.hostIP'), fieldEnv('POD_IP', 'status.podIP')]
  if (spec.goMaxProcs !== undefined) out.push({ name: 'GOMAXPROCS', value: String(spec.goMaxProcs) })
  if (spec.clientTimeout) out.push({ name: 'VAULT_CLIENT_TIMEOUT', value: spec.clientTimeout })
  if (spec.clientMaxRetries !== undefined) out.push({ name: 'VAULT_MAX_RETRIES', value: String(spec.clientMaxRetries) })
  out.push({ name: 'VAULT_LOG_LEVEL', value: spec.logLevel }, { name: 'VAULT_LOG_FORMAT', value: spec.logFormat })
  if (spec.proxyAddress) out.push({ name: 'HTTPS_PROXY', value: spec.proxyAddress })
  if (spec.configMap) out.push(...configMapEnv(spec))
  else out.push({ name: 'VAULT_CONFIG', value: encodeConfig(agentConfig(spec, init)) })
  if (spec.vaultCACertBytes) out.push({ name: 'VAULT_CACERT_BYTES', value: spec.vaultCACertBytes })
  out.push(...spec.awsEnv.map((e) => jsonClone(e)))
  // auth-config-region goes last, so it wins over the app's AWS_REGION (vault-k8s).
  const region = spec.authConfig.region
  if (spec.authType === 'aws' && region !== undefined) out.push({ name: 'AWS_REGION', value: region })
  return out
}

// With a user ConfigMap the agent reads its own HCL; the connection comes from env.
function configMapEnv(spec: AgentSpec): JsonObject[] {
  const pairs: [string, string][] = [
    ['VAULT_ADDR', spec.address],
    ['VAULT_CACERT', spec.caCert],
    ['VAULT_CAPATH', spec.caKey],
    ['VAULT_CLIENT_CERT', spec.clientCert],
    ['VAULT_CLIENT_KEY', spec.clientKey],
    // Always written, as vault-k8s does: "false" overrides a value baked into an image.
    ['VAULT_SKIP_VERIFY', String(spec.tlsSkipVerify)],
    ['VAULT_TLS_SERVER_NAME', spec.tlsServerName],
  ]
  return pairs.filter(([, value]) => value !== '').map(([name, value]) => ({ name, value }))
}

function args(spec: AgentSpec, init: boolean): string[] {
  if (spec.configMap) {
    const file = init ? 'config-init.hcl' : 'config.hcl'
    return [`touch ${TOKEN_SINK} && vault agent -config=${MOUNT_PATH.configMap}/${file}`]
  }
  return [`echo \${VAULT_CONFIG?} | base64 -d > ${MOUNT_PATH.home}/config.json && vault agent -config=${MOUNT_PATH.home}/config.json`]
}

function securityContext(spec: AgentSpec): JsonObject {
  return {
    runAsUser: spec.runAsUser,
    runAsGroup: spec.runAsGroup,
    runAsNonRoot: spec.runAsUser !== 0 && spec.runAsGroup !== 0,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  }
}

function resources(spec: AgentSpec): JsonObject {
  const out: JsonObject = {}
  if (Object.keys(spec.resources.limits).length > 0) out.limits = { ...spec.resources.limits }
  if (Object.keys(spec.resources.requests).length > 0) out.requests = { ...spec.resources.requests }
  return out
}

function baseContainer(spec: AgentSpec, name: string, init: boolean, mounts: JsonObject[]): JsonObject {
  const container: JsonObject = {
    name,
    image: spec.image,
    command: ['/bin/sh', '-ec'],
    args: args(spec, init),
    env: env(spec, init),
    resources: resources(spec),
    volumeMounts: mounts,
  }
  if (spec.setSecurityContext) container.securityContext = securityContext(spec)
  return container
}

export function initContainer(spec: AgentSpec, pod: JsonObject): JsonObject {
  const mounts = [{ name: VOLUME.homeInit, mountPath: MOUNT_PATH.home }, tokenMount(spec), ...commonMounts(spec, pod)]
  return applyUserPatch(baseContainer(spec, CONTAINER.init, true, mounts), spec.initPatch, 'agent-init-json-patch')
}

// One shell word. Values come from settings and annotations, so anything but
// plain URL and path characters is single-quoted (a plain value is left as it
// is: the command then reads exactly as vault-k8s writes it).
export function shellWord(value: string): string {
  if (value !== '' && /^[A-Za-z0-9_./:@%+=,-]+$/.test(value)) return value
  return `'${value.replace(/'/g, `'\\''`)}'`
}

function revokeCommand(spec: AgentSpec): string {
  // The same TLS flags the agent connects with: a Vault that requires client
  // certificates refuses the revocation without them. Each value is one shell word.
  const flags = [`-address=${shellWord(spec.address)}`]
  if (spec.caCert) flags.push(`-ca-cert=${shellWord(spec.caCert)}`)
  if (spec.clientCert) flags.push(`-client-cert=${shellWord(spec.clientCert)}`)
  if (spec.clientKey) flags.push(`-client-key=${shellWord(spec.clientKey)}`)
  return `/bin/sleep ${shellWord(String(spec.revokeGrace))} && /bin/vault token revoke ${flags.join(' ')} -self`
}

export function sidecarContainer(spec: AgentSpec, pod: JsonObject): JsonObject {
  const mounts = [tokenMount(spec), { name: VOLUME.homeSidecar, mountPath: MOUNT_PATH.home }, ...commonMounts(spec, pod)]
  const container = baseContainer(spec, CONTAINER.sidecar, false, mounts)
  container.lifecycle = spec.revokeOnShutdown ? { preStop: { exec: { command: ['/bin/sh', '-c', revokeCommand(spec)] } } } : {}
  if (spec.native) makeNative(spec, container)
  return applyUserPatch(container, spec.sidecarPatch, 'agent-json-patch')
}

// A native sidecar (KEP-753): an init container that keeps running. Kubernetes
// starts the next container only once the startup probe passes, and the probe
// passes only when every template has rendered, so apps start with their files.
function makeNative(spec: AgentSpec, container: JsonObject): void {
  container.restartPolicy = 'Always'
  const files = spec.secrets.map((s) => s.destination)
  const checks = (files.length > 0 ? files : [TOKEN_SINK]).map((f) => `test -e '${f.replace(/'/g, "'\\''")}'`)
  container.startupProbe = {
    exec: { command: ['/bin/sh', '-c', checks.join(' && ')] },
    periodSeconds: 1,
    failureThreshold: 300,
    timeoutSeconds: 1,
  }
}

// A denial found while rendering (the patch annotations can only be checked
// against the container they apply to).
export class RenderError extends Error {}

// A patched container larger than this is refused: `copy` operations can
// double a subtree each (100 of them would need 2^100 bytes). A real agent
// container is 2-10 KiB.
export const MAX_PATCHED_CONTAINER_BYTES = 256 * 1024
// And the operations together get this long (they are bounded by size, so
// this is a backstop against a slow path in the patch library).
const MAX_PATCH_MS = 1_000

// agent-json-patch / agent-init-json-patch: their JSON (count, nesting) was
// checked when read. Applied one operation at a time, with the size of the
// result checked after each, so no operation can run on an oversized document.
function applyUserPatch(container: JsonObject, ops: unknown[], annotation: string): JsonObject {
  if (ops.length === 0) return container
  const refuse = (reason: string): RenderError => new RenderError(`vault.hashicorp.com/${annotation}: cannot be applied to the ${String(container.name)} container: ${reason}`)
  const started = performance.now()
  let document: JsonObject = structuredClone(container)
  for (const [index, op] of ops.entries()) {
    try {
      document = fastJsonPatch.applyOperation(document, op as fastJsonPatch.Operation, true, true, true, index).newDocument
    } catch (error) {
      throw refuse(error instanceof Error ? error.message.split('\n')[0]! : String(error))
    }
    const bytes = JSON.stringify(document).length
    if (bytes > MAX_PATCHED_CONTAINER_BYTES) throw refuse(`operation ${index} makes the container ${bytes} bytes; at most ${MAX_PATCHED_CONTAINER_BYTES} are accepted`)
    if (performance.now() - started > MAX_PATCH_MS) throw refuse(`the operations took longer than ${MAX_PATCH_MS} ms; at most ${MAX_PATCH_MS} ms are spent on them`)
  }
  return document
}

export function appMounts(spec: AgentSpec): JsonObject[] {
  return secretMounts(spec)
}
