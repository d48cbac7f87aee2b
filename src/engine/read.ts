// Reads a pod's annotations against the table: every vault.hashicorp.com/ and
// vault-injector.dev/ key is matched and parsed once, errors and warnings are
// collected, and effective values fall back to namespace defaults, then to the
// injector-wide settings, then to the table's literal defaults.
import { ANNOTATIONS, VAULT_PREFIX, fullName, isOurs, matchAnnotation, type AnnotationSpec } from './annotations.ts'
import type { Settings } from './settings.ts'

const MAX_SHOWN_VALUE_CHARS = 120

// The value as a denial message shows it: quoted, escaped, shortened.
export function showValue(raw: string): string {
  const shown = raw.length > MAX_SHOWN_VALUE_CHARS ? raw.slice(0, MAX_SHOWN_VALUE_CHARS) + '…' : raw
  return JSON.stringify(shown)
}

interface Entry {
  raw: string
  fromDefaults: boolean
}

export interface Reading {
  errors: string[]
  warnings: string[]
  // Effective parsed value of a pod-scoped annotation ("both" rows: the global one).
  get<T>(name: string, prefix?: string): T | undefined
  // True when the pod itself (or a namespace default) sets it.
  isSet(name: string, prefix?: string): boolean
  // Per-secret values: suffix (raw secret name) → raw value.
  perSecret(name: string): ReadonlyMap<string, string>
  // Keyed values (auth-config-*, agent-telemetry-*): key → raw value.
  keyed(name: string): ReadonlyMap<string, string>
  // Every table annotation that is in effect, with its value (for summaries).
  effective(): Record<string, string>
}

const POD_SPECS = ANNOTATIONS.filter((a) => a.scope === 'pod' || a.scope === 'both')
const POD_ROWS = new Map<string, AnnotationSpec>(POD_SPECS.map((a) => [fullName(a), a]))

interface PodRow {
  key: string
  spec: AnnotationSpec
}
// Prefix → short name → row. get() is called some eighty times per pod with
// constant names: looking them up here builds no key string per call (building
// and hashing "vault.hashicorp.com/<name>" each time was the engine's hottest
// line in the server's profile).
const POD_ROWS_BY_PREFIX = new Map<string, Map<string, PodRow>>()
for (const spec of POD_SPECS) {
  const rows = POD_ROWS_BY_PREFIX.get(spec.prefix) ?? new Map<string, PodRow>()
  rows.set(spec.name, { key: fullName(spec), spec })
  POD_ROWS_BY_PREFIX.set(spec.prefix, rows)
}

function podRow(name: string, prefix: string = VAULT_PREFIX): PodRow {
  const row = POD_ROWS_BY_PREFIX.get(prefix)?.get(name)
  if (!row) throw new Error(`engine bug: ${prefix}${name} is not a pod-scoped annotation`)
  return row
}

function settingText(settings: Settings, spec: AnnotationSpec): string | undefined {
  if (!spec.setting) return spec.defaultValue
  return String(settings[spec.setting])
}

export function readAnnotations(
  podAnnotations: Readonly<Record<string, unknown>>,
  defaults: Readonly<Record<string, string>>,
  settings: Settings,
): Reading {
  const errors: string[] = []
  const warnings: string[] = []
  const entries = new Map<string, Entry>()
  for (const [key, raw] of Object.entries(defaults)) {
    if (isOurs(key)) entries.set(key, { raw, fromDefaults: true })
  }
  for (const [key, raw] of Object.entries(podAnnotations)) {
    if (!isOurs(key)) continue
    if (typeof raw !== 'string') {
      errors.push(`${key}: annotation values must be strings`)
      continue
    }
    entries.set(key, { raw, fromDefaults: false })
  }

  const parsed = new Map<string, unknown>()
  const matched = new Set<string>()
  const perSecret = new Map<string, Map<string, string>>()
  const keyed = new Map<string, Map<string, string>>()
  for (const [key, entry] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const match = matchAnnotation(key)
    if (!match) {
      warnings.push(`${key}: unknown annotation, ignored`)
      continue
    }
    matched.add(key)
    const { spec, suffix } = match
    const value = parseEntry(spec, entry.raw)
    if (value === INVALID) {
      const origin = entry.fromDefaults ? ' (namespace default from policy)' : ''
      errors.push(`${key}: ${showValue(entry.raw)} ${spec.type.accepts}${origin}`)
      continue
    }
    if (suffix === undefined) {
      parsed.set(key, value)
    } else {
      const bucket = spec.scope === 'key' ? keyed : perSecret
      const values = bucket.get(spec.name) ?? new Map<string, string>()
      values.set(suffix, entry.raw)
      bucket.set(spec.name, values)
    }
  }

  const defaultsParsed = parsedDefaults(settings)
  const reading: Reading = {
    errors,
    warnings,
    get<T>(name: string, prefix?: string): T | undefined {
      const { key, spec } = podRow(name, prefix)
      if (parsed.has(key)) {
        const value = parsed.get(key)
        return value === '' && !spec.emptyOmits && spec.type.accepts !== '' ? undefined : (value as T)
      }
      if (!defaultsParsed.has(key)) {
        const text = settingText(settings, spec)
        const value = text === undefined ? INVALID : parseEntry(spec, text)
        defaultsParsed.set(key, value === INVALID ? undefined : value)
      }
      return defaultsParsed.get(key) as T | undefined
    },
    isSet: (name, prefix) => parsed.has(podRow(name, prefix).key),
    perSecret: (name) => perSecret.get(name) ?? new Map(),
    keyed: (name) => keyed.get(name) ?? new Map(),
    effective() {
      const out: Record<string, string> = {}
      for (const [key, spec] of POD_ROWS) {
        const text = entries.get(key)?.raw ?? settingText(settings, spec)
        if (text !== undefined && text !== '') out[key] = text
      }
      for (const [key, entry] of entries) {
        if (!POD_ROWS.has(key) && matched.has(key)) out[key] = entry.raw
      }
      return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    },
  }
  return reading
}

const INVALID = Symbol('invalid')

// Defaults depend only on the settings, which do not change while a process
// runs: parse each once per settings object, not once per pod (parsing a URL
// default on every admission showed in the profile).
const DEFAULTS_BY_SETTINGS = new WeakMap<Settings, Map<string, unknown>>()
function parsedDefaults(settings: Settings): Map<string, unknown> {
  let cache = DEFAULTS_BY_SETTINGS.get(settings)
  if (!cache) {
    cache = new Map()
    DEFAULTS_BY_SETTINGS.set(settings, cache)
  }
  return cache
}

// "" is a value only where it means something: "omit the field" (limits and
// the like) or "unset" for annotations without a default. Elsewhere vault-k8s
// fails to parse it, and so do we.
function parseEntry(spec: AnnotationSpec, raw: string): unknown {
  if (raw === '') {
    const unsetByDefault = spec.setting === undefined && spec.defaultValue === undefined
    return spec.emptyOmits || spec.type.accepts === '' || unsetByDefault ? '' : INVALID
  }
  const value = spec.type.parse(raw)
  return value === undefined ? INVALID : value
}
