// Deep copy of JSON data. Pods are plain JSON, and a JSON round trip copies
// them several times faster than structuredClone on Node 24. Values JSON
// cannot carry (BigInt, cycles: never in a pod) fall back to structuredClone.
export function jsonClone<T>(value: T): T {
  if (value === undefined) return value
  try {
    return JSON.parse(JSON.stringify(value)) as T
  } catch {
    return structuredClone(value)
  }
}

function shallow(value: unknown): unknown {
  if (Array.isArray(value)) return [...value]
  if (typeof value === 'object' && value !== null) return { ...value }
  return value
}

// A copy of the pod in which exactly the objects the engine writes to are new
// (the pod, metadata, annotations, spec, its container and volume lists and
// each container); everything else is shared with the input. The input is
// never written, and the diff skips shared subtrees by identity, so its cost
// follows what changed, not the size of the pod.
export function copyForMutation<T>(pod: T): T {
  const out = shallow(pod) as Record<string, unknown>
  if (typeof out !== 'object' || out === null || Array.isArray(out)) return out as T
  const metadata = shallow(out.metadata) as Record<string, unknown> | undefined
  if (metadata && typeof metadata === 'object' && !Array.isArray(metadata)) {
    out.metadata = metadata
    if (metadata.annotations !== undefined) metadata.annotations = shallow(metadata.annotations)
  }
  const spec = shallow(out.spec) as Record<string, unknown> | undefined
  if (spec && typeof spec === 'object' && !Array.isArray(spec)) {
    out.spec = spec
    for (const field of ['containers', 'initContainers']) {
      if (Array.isArray(spec[field])) spec[field] = (spec[field] as unknown[]).map(shallow)
    }
    if (Array.isArray(spec.volumes)) spec.volumes = [...spec.volumes]
  }
  return out as T
}
