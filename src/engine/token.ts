// Where the agents' Kubernetes service-account token comes from.
// vault-k8s reuses the app's token mount and refuses pods without one; we
// project a token of the agents' own there, and on request everywhere.
import { VOLUME } from './names.ts'
import type { JsonObject } from './types.ts'
import { ANNOTATION_TABLE, fullName } from './annotations.ts'
import { valueProblem } from './read.ts'

export const PROJECTED_TOKEN_VOLUME = VOLUME.token
export const AGENT_TOKEN_MOUNT_PATH = '/var/run/secrets/vault.hashicorp.com/serviceaccount'

export interface TokenSource {
  kind: 'pod-mount' | 'named-volume' | 'projected'
  volumeName: string
  mountPath: string
  tokenFile: string
  // Set when we add the volume ourselves.
  volume?: JsonObject
  audience?: string
  expirationSeconds?: number
}

// The file the agents log in with.
export function tokenPath(token: Pick<TokenSource, 'mountPath' | 'tokenFile'>): string {
  return `${token.mountPath}/${token.tokenFile}`
}

export interface TokenOptions {
  namedVolume?: string
  project: boolean
  audience: string
  expirationSeconds: number
}

type Mount = { name?: unknown; mountPath?: unknown }
type Volume = { name?: unknown; projected?: { sources?: unknown } }

function mountsOf(container: unknown): Mount[] {
  const mounts = (container as { volumeMounts?: unknown } | null)?.volumeMounts
  return Array.isArray(mounts) ? (mounts as Mount[]) : []
}

function containers(spec: JsonObject, field: 'containers' | 'initContainers'): unknown[] {
  const list = spec[field]
  return Array.isArray(list) ? list : []
}

// The token file inside a projected volume (vault-k8s #601).
function projectedTokenFile(volume: Volume | undefined): string {
  const sources = volume?.projected?.sources
  if (!Array.isArray(sources)) return 'token'
  for (const source of sources) {
    const path = (source as { serviceAccountToken?: { path?: unknown } } | null)?.serviceAccountToken?.path
    if (typeof path === 'string' && path !== '') return path
  }
  return 'token'
}

export function findTokenSource(podSpec: JsonObject, options: TokenOptions): TokenSource | string {
  const volumes = (Array.isArray(podSpec.volumes) ? podSpec.volumes : []) as Volume[]
  if (options.namedVolume) return namedVolumeSource(podSpec, volumes, options.namedVolume)
  if (!options.project) {
    for (const container of containers(podSpec, 'containers')) {
      const mount = mountsOf(container).find((m) => typeof m.mountPath === 'string' && m.mountPath.includes('serviceaccount'))
      if (mount && typeof mount.name === 'string' && typeof mount.mountPath === 'string') {
        return { kind: 'pod-mount', volumeName: mount.name, mountPath: mount.mountPath, tokenFile: 'token' }
      }
    }
  }
  return projectedSource(options)
}

function namedVolumeSource(podSpec: JsonObject, volumes: Volume[], name: string): TokenSource | string {
  const volume = volumes.find((v) => v.name === name)
  const tokenFile = projectedTokenFile(volume)
  for (const field of ['containers', 'initContainers'] as const) {
    for (const container of containers(podSpec, field)) {
      const mount = mountsOf(container).find((m) => m.name === name)
      if (mount && typeof mount.mountPath === 'string') {
        return { kind: 'named-volume', volumeName: name, mountPath: mount.mountPath, tokenFile }
      }
    }
  }
  if (!volume) {
    return valueProblem(fullName(ANNOTATION_TABLE.serviceAccountTokenVolumeName), name, 'names no volume of the pod')
  }
  return { kind: 'named-volume', volumeName: name, mountPath: AGENT_TOKEN_MOUNT_PATH, tokenFile }
}

function projectedSource(options: TokenOptions): TokenSource {
  const serviceAccountToken: JsonObject = { path: 'token', expirationSeconds: options.expirationSeconds }
  if (options.audience !== '') serviceAccountToken.audience = options.audience
  return {
    kind: 'projected',
    volumeName: PROJECTED_TOKEN_VOLUME,
    mountPath: AGENT_TOKEN_MOUNT_PATH,
    tokenFile: 'token',
    volume: { name: PROJECTED_TOKEN_VOLUME, projected: { sources: [{ serviceAccountToken }] } },
    ...(options.audience !== '' ? { audience: options.audience } : {}),
    expirationSeconds: options.expirationSeconds,
  }
}
