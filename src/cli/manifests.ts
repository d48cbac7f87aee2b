// Reading manifests the way kubectl does (multi-document YAML or JSON, `List`,
// files, directories, stdin) and finding the pods inside workloads.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments, type Document } from 'yaml'
import type { JsonObject } from '../engine/types.ts'
import { UsageError } from '../errors.ts'

export class InputError extends UsageError {}

export interface ManifestDocument {
  // Where it came from, for messages: "file.yaml#2".
  origin: string
  // 1-based position among all documents read.
  index: number
  object: unknown
  // The parsed YAML document, to print unchanged documents with their comments.
  source?: Document
}

const MANIFEST_FILE = /\.(ya?ml|json)$/i

function filesIn(dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...filesIn(path))
    else if (MANIFEST_FILE.test(entry.name)) out.push(path)
  }
  return out
}

function readText(path: string, stdin: () => string): string {
  if (path === '-') return stdin()
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new InputError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
}

export function parseManifests(text: string, origin: string, firstIndex = 1): ManifestDocument[] {
  const docs = parseAllDocuments(text, { prettyErrors: true })
  const out: ManifestDocument[] = []
  let n = 0
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    n++
    if (doc.errors.length > 0) throw new InputError(`${origin}: document ${n} is not valid YAML or JSON: ${doc.errors[0]!.message.split('\n')[0]}`)
    const object: unknown = doc.toJS({ maxAliasCount: 100 })
    if (object === null || object === undefined) continue
    out.push({ origin: `${origin}#${n}`, index: firstIndex + out.length, object, source: doc })
  }
  return out
}

export function readManifests(paths: readonly string[], stdin: () => string = () => readFileSync(0, 'utf8')): ManifestDocument[] {
  const out: ManifestDocument[] = []
  for (const path of paths) {
    const files = path !== '-' && isDirectory(path) ? filesIn(path) : [path]
    for (const file of files) out.push(...parseManifests(readText(file, stdin), file === '-' ? 'stdin' : file, out.length + 1))
  }
  return out
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// Kinds whose pods come from spec.template.
const TEMPLATE_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'ReplicationController', 'Job'])

export interface PodLocation {
  kind: string
  // The pod, or the workload's pod template ({metadata, spec}).
  pod: JsonObject
  // Put the mutated pod back where it came from.
  replace(pod: JsonObject): void
}

// The pod (template) of a Pod or workload object, or undefined for other kinds.
export function podOf(object: unknown): PodLocation | undefined {
  if (!isObject(object) || typeof object.kind !== 'string') return undefined
  const kind = object.kind
  if (kind === 'Pod') return { kind, pod: object, replace: (pod) => Object.assign(clear(object), pod) }
  const spec = isObject(object.spec) ? object.spec : undefined
  let holder: JsonObject | undefined
  if (TEMPLATE_KINDS.has(kind)) holder = spec
  else if (kind === 'CronJob') {
    const jobTemplate = isObject(spec?.jobTemplate) ? spec.jobTemplate : undefined
    holder = isObject(jobTemplate?.spec) ? jobTemplate.spec : undefined
  }
  if (!holder || !isObject(holder.template)) return undefined
  const target = holder
  return { kind, pod: target.template as JsonObject, replace: (pod) => void (target.template = pod) }
}

function clear(object: JsonObject): JsonObject {
  for (const key of Object.keys(object)) delete object[key]
  return object
}

export function displayName(object: unknown): string {
  if (!isObject(object)) return '(not an object)'
  const metadata = isObject(object.metadata) ? object.metadata : {}
  const name = typeof metadata.name === 'string' ? metadata.name : typeof metadata.generateName === 'string' ? `${metadata.generateName}*` : '(unnamed)'
  const ns = typeof metadata.namespace === 'string' ? `${metadata.namespace}/` : ''
  return `${typeof object.kind === 'string' ? object.kind : '(no kind)'} ${ns}${name}`
}

export function namespaceOf(object: unknown, fallback: string): string {
  const metadata = isObject(object) && isObject(object.metadata) ? object.metadata : {}
  return typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : fallback
}
