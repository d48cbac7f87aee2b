// Mutating the raw pod JSON: strip what an earlier injection added, then add
// this injection's parts. Fields we do not own are never touched.
import { jsonClone } from './clone.ts'
import { appMounts, initContainer, sidecarContainer, volumes } from './containers.ts'
import { CONTAINER, isOwnedVolume, OWNED_CONTAINERS } from './names.ts'
import type { AgentSpec } from './spec.ts'
import type { JsonObject } from './types.ts'

export const STATUS_ANNOTATION = 'vault.hashicorp.com/agent-inject-status'

type Named = JsonObject & { name?: unknown }

function list(spec: JsonObject, field: string): Named[] {
  const value = spec[field]
  return Array.isArray(value) ? (value as Named[]) : []
}

function setList(spec: JsonObject, field: string, items: Named[]): void {
  if (items.length > 0) spec[field] = items
  else delete spec[field]
}

function withoutOwnedMounts(container: Named): void {
  if (!Array.isArray(container.volumeMounts)) return
  const kept = (container.volumeMounts as Named[]).filter((m) => !isOwnedVolume(String(m.name)))
  if (kept.length !== container.volumeMounts.length) container.volumeMounts = kept
}

// Remove the agent containers, volumes and mounts an earlier injection added.
// Arrays that held only our items are removed again, so a strip followed by
// the same injection reproduces the pod exactly.
// Returns the names of the volumes removed.
export function stripInjection(podSpec: JsonObject): string[] {
  for (const field of ['containers', 'initContainers']) {
    const kept = list(podSpec, field).filter((c) => !OWNED_CONTAINERS.has(String(c.name)))
    kept.forEach(withoutOwnedMounts)
    if (Array.isArray(podSpec[field])) setList(podSpec, field, kept)
  }
  const volumes = list(podSpec, 'volumes')
  const removed = volumes.filter((v) => isOwnedVolume(String(v.name))).map((v) => String(v.name))
  if (Array.isArray(podSpec.volumes)) setList(podSpec, 'volumes', volumes.filter((v) => !isOwnedVolume(String(v.name))))
  return removed
}

// Names in a pod that was never injected which would collide with ours.
export function reservedNameClashes(podSpec: JsonObject): string[] {
  const clashes: string[] = []
  for (const field of ['containers', 'initContainers']) {
    for (const c of list(podSpec, field)) if (OWNED_CONTAINERS.has(String(c.name))) clashes.push(`container ${String(c.name)}`)
  }
  for (const v of list(podSpec, 'volumes')) if (isOwnedVolume(String(v.name))) clashes.push(`volume ${String(v.name)}`)
  return clashes
}

function appendMounts(container: Named, mounts: JsonObject[]): void {
  const current = Array.isArray(container.volumeMounts) ? (container.volumeMounts as JsonObject[]) : []
  container.volumeMounts = [...current, ...mounts.map((m) => jsonClone(m))]
}

export function applyInjection(pod: JsonObject, spec: AgentSpec): void {
  const podSpec = pod.spec as JsonObject
  // Rendered first: copied mounts and IRSA read the pod as it was.
  const init = spec.prePopulate && !spec.native ? initContainer(spec, pod) : undefined
  const sidecar = !spec.prePopulateOnly ? sidecarContainer(spec, pod) : undefined

  podSpec.volumes = [...list(podSpec, 'volumes'), ...volumes(spec)]
  for (const container of list(podSpec, 'containers')) {
    if (spec.appContainers.includes(String(container.name))) appendMounts(container, appMounts(spec))
  }
  // Existing init containers always get the secrets, as in vault-k8s.
  const existingInit = list(podSpec, 'initContainers')
  if (spec.prePopulate || spec.native) existingInit.forEach((c) => appendMounts(c, appMounts(spec)))
  const agentInit = spec.native ? sidecar : init
  if (agentInit) podSpec.initContainers = spec.initFirst ? [agentInit, ...existingInit] : [...existingInit, agentInit]
  if (spec.shareProcessNamespace !== undefined && spec.prePopulate) podSpec.shareProcessNamespace = spec.shareProcessNamespace
  if (sidecar && !spec.native) podSpec.containers = [...list(podSpec, 'containers'), sidecar]

  const metadata = (pod.metadata ??= {}) as JsonObject
  const annotations = (metadata.annotations ??= {}) as JsonObject
  annotations[STATUS_ANNOTATION] = 'injected'
}

// Containers that should have the secrets volume but lack it (added after the
// injection, e.g. by a later webhook) get it. Returns their names.
// The pod may have been injected by another injector (vault-k8s numbers its
// vault-secrets-custom-N volumes in random order) or carry a copied status
// annotation without any injected volume: a mount path is matched by path,
// and uses the volume the agents mount there; a volume the pod does not have
// is never mounted (the API server would refuse the pod).
export function topUpMounts(podSpec: JsonObject, spec: AgentSpec): string[] {
  const volumeNames = new Set(list(podSpec, 'volumes').map((v) => String(v.name)))
  const agentVolumeAt = new Map<string, string>()
  for (const c of [...list(podSpec, 'initContainers'), ...list(podSpec, 'containers')]) {
    if (!OWNED_CONTAINERS.has(String(c.name)) || !Array.isArray(c.volumeMounts)) continue
    for (const m of c.volumeMounts as Named[]) if (!agentVolumeAt.has(String(m.mountPath))) agentVolumeAt.set(String(m.mountPath), String(m.name))
  }
  const wanted = appMounts(spec)
    .map((m): JsonObject => ({ ...m, name: agentVolumeAt.get(String(m.mountPath)) ?? m.name }))
    .filter((m) => volumeNames.has(String(m.name)))
  const changed: string[] = []
  const consider = (container: Named): void => {
    if (OWNED_CONTAINERS.has(String(container.name))) return
    const have = Array.isArray(container.volumeMounts) ? (container.volumeMounts as Named[]) : []
    const missing = wanted.filter((m) => !have.some((h) => (h as JsonObject).mountPath === m.mountPath))
    if (missing.length === 0) return
    appendMounts(container, missing)
    changed.push(String(container.name))
  }
  for (const c of list(podSpec, 'containers')) if (spec.appContainers.includes(String(c.name))) consider(c)
  if (spec.prePopulate || spec.native) list(podSpec, 'initContainers').forEach(consider)
  return changed
}
