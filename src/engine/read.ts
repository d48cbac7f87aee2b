// Reads a pod's annotations against the table: every vault.hashicorp.com/ and
// vault-injector.dev/ key is matched and parsed once, errors and warnings are
// collected, and the result is a typed record (one property per annotation,
// its parsed type). Values fall back to namespace defaults, then to the
// injector-wide settings, then to the table's literal defaults.
import { MAX_SUGGESTED_KEYS, unknownAnnotationMessage } from './suggest.ts'
import { ANNOTATION_TABLE, fullName, isOurs, matchAnnotation, type AnnotationKey, type AnnotationSpec, type AnnotationTable, type Scope } from './annotations.ts'
import type { EngineSettings } from './settings.ts'
import { boolType, type ValueType } from './values.ts'

const MAX_SHOWN_VALUE_CHARS = 120

// The value as a denial message shows it: quoted, escaped, shortened.
export function showValue(raw: string): string {
  const shown = raw.length > MAX_SHOWN_VALUE_CHARS ? raw.slice(0, MAX_SHOWN_VALUE_CHARS) + '…' : raw
  return JSON.stringify(shown)
}

// One problem with one annotation, said the one way the engine says it:
// `<annotation>: "<value>" <what is accepted>`.
export function valueProblem(key: string, raw: string, accepts: string): string {
  return `${key}: ${showValue(raw)} ${accepts}`
}

// The parsed type of a row: never undefined when the row has a default or its
// type has an "unset" value ("" for text, [] for lists).
type ValueOf<R> =
  R extends AnnotationSpec<infer V, Scope, infer D>
    ? V extends ValueType<infer T>
      ? D extends true
        ? T
        : V extends { unset: unknown }
          ? T
          : T | undefined
      : never
    : never

type KeysIn<S extends Scope> = { [K in AnnotationKey]: AnnotationTable[K]['scope'] extends S ? K : never }[AnnotationKey]
export type PodKey = KeysIn<'pod' | 'both'>
export type SecretKey = KeysIn<'secret' | 'both'>
export type KeyedKey = KeysIn<'key'>

// The effective value of every pod-scoped annotation ("both" rows: the pod-wide one).
export type PodAnnotations = { readonly [K in PodKey]: ValueOf<AnnotationTable[K]> }
// The effective value of every per-secret annotation for one secret ("both"
// rows fall back to the pod-wide value).
export type SecretAnnotations = { readonly [K in SecretKey]: ValueOf<AnnotationTable[K]> }

interface Entry {
  raw: string
  fromDefaults: boolean
}

export interface Reading {
  errors: string[]
  warnings: string[]
  pod: PodAnnotations
  // True when the pod itself (or a namespace default) sets it.
  isSet(key: PodKey): boolean
  // The secret names (as written) a per-secret annotation is given for.
  secretNames(key: SecretKey): ReadonlySet<string>
  secret(rawName: string): SecretAnnotations
  // Keyed values (auth-config-*, agent-telemetry-*): key → raw value.
  keyed(key: KeyedKey): ReadonlyMap<string, string>
  // Every table annotation that is in effect, with its value (for summaries).
  effective(): Record<string, string>
}

type Row = { key: AnnotationKey; spec: AnnotationSpec; fullKey: string }
const ROWS: Row[] = (Object.entries(ANNOTATION_TABLE) as [AnnotationKey, AnnotationSpec][]).map(([key, spec]) => ({ key, spec, fullKey: fullName(spec) }))
const KEY_OF = new Map<AnnotationSpec, AnnotationKey>(ROWS.map((r) => [r.spec, r.key]))
const POD_ROWS = ROWS.filter((r) => r.spec.scope === 'pod' || r.spec.scope === 'both')
const POD_ROW_BY_FULL_KEY = new Map(POD_ROWS.map((r) => [r.fullKey, r]))
const SECRET_ROWS = ROWS.filter((r) => r.spec.scope === 'secret' || r.spec.scope === 'both')

const INVALID = Symbol('invalid')
const EMPTY_SET: ReadonlySet<string> = new Set()
const EMPTY_MAP: ReadonlyMap<string, string> = new Map()

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export function readAnnotations(
  podAnnotations: Readonly<Record<string, unknown>>,
  defaults: Readonly<Record<string, string>>,
  settings: EngineSettings,
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

  const pod: Record<string, unknown> = { ...defaultRecord(settings) }
  const set = new Set<AnnotationKey>()
  const matched = new Set<string>()
  const perSecret = new Map<AnnotationKey, Map<string, unknown>>()
  const keyed = new Map<AnnotationKey, Map<string, string>>()
  let unknownCount = 0
  for (const [fullKey, entry] of [...entries].sort(([a], [b]) => compareKeys(a, b))) {
    const match = matchAnnotation(fullKey)
    if (!match) {
      warnings.push(unknownAnnotationMessage(fullKey, unknownCount++ < MAX_SUGGESTED_KEYS))
      continue
    }
    matched.add(fullKey)
    const { spec, suffix } = match
    const key = KEY_OF.get(spec)!
    const value = parseEntry(spec, entry.raw)
    if (value === INVALID) {
      const origin = entry.fromDefaults ? ' (namespace default from policy)' : ''
      errors.push(valueProblem(fullKey, entry.raw, spec.type.accepts) + origin)
      continue
    }
    if (suffix === undefined) {
      set.add(key)
      if (!(entry.raw === '' && spec.emptyIsDefault)) pod[key] = value
    } else if (spec.scope === 'key') {
      const values = keyed.get(key) ?? new Map<string, string>()
      values.set(suffix, entry.raw)
      keyed.set(key, values)
    } else {
      const values = perSecret.get(key) ?? new Map<string, unknown>()
      values.set(suffix, value)
      perSecret.set(key, values)
    }
  }

  const podRecord = pod as unknown as PodAnnotations
  return {
    errors,
    warnings,
    pod: podRecord,
    isSet: (key) => set.has(key),
    secretNames: (key) => {
      const values = perSecret.get(key)
      return values ? new Set(values.keys()) : EMPTY_SET
    },
    secret(rawName) {
      const out: Record<string, unknown> = {}
      for (const { key, spec } of SECRET_ROWS) {
        const own = perSecret.get(key)
        if (own?.has(rawName)) out[key] = own.get(rawName)
        else out[key] = spec.scope === 'both' ? pod[key] : defaultOf(spec, settings)
      }
      return out as unknown as SecretAnnotations
    },
    keyed: (key) => keyed.get(key) ?? EMPTY_MAP,
    effective() {
      const out: Record<string, string> = {}
      for (const { fullKey, spec } of POD_ROWS) {
        const text = entries.get(fullKey)?.raw ?? settingText(settings, spec)
        if (text !== undefined && text !== '') out[fullKey] = text
      }
      for (const [fullKey, entry] of entries) {
        if (!POD_ROW_BY_FULL_KEY.has(fullKey) && matched.has(fullKey)) out[fullKey] = entry.raw
      }
      return Object.fromEntries(Object.entries(out).sort(([a], [b]) => compareKeys(a, b)))
    },
  }
}

function settingText(settings: EngineSettings, spec: AnnotationSpec): string | undefined {
  if (!spec.setting) return spec.defaultValue
  return String(settings[spec.setting])
}

function defaultOf(spec: AnnotationSpec, settings: EngineSettings): unknown {
  const text = settingText(settings, spec)
  if (text === undefined) return spec.type.unset
  const value = parseEntry(spec, text)
  // Settings are validated at start with these same parsers; a default that
  // does not parse is a bug in the table.
  if (value === INVALID) throw new Error(`engine bug: the default of ${fullName(spec)}, ${showValue(text)}, ${spec.type.accepts}`)
  return value
}

// Defaults depend only on the settings, which do not change while a process
// runs: parse them once per settings object, not once per pod (parsing a URL
// default on every admission showed in the profile).
const DEFAULTS_BY_SETTINGS = new WeakMap<EngineSettings, Readonly<Record<string, unknown>>>()
function defaultRecord(settings: EngineSettings): Readonly<Record<string, unknown>> {
  let record = DEFAULTS_BY_SETTINGS.get(settings)
  if (!record) {
    record = Object.fromEntries(POD_ROWS.map(({ key, spec }) => [key, defaultOf(spec, settings)]))
    DEFAULTS_BY_SETTINGS.set(settings, record)
  }
  return record
}

// "" is a value only where it means something: "omit the field" (limits and
// the like), text, or "unset" for annotations without a default. Elsewhere
// vault-k8s fails to parse it, and so do we.
function parseEntry(spec: AnnotationSpec, raw: string): unknown {
  // vault-k8s parses booleans with parseutil.ParseBool (mapstructure's weak
  // decoding), which reads "" as false.
  if (raw === '' && spec.type === boolType) return false
  if (raw === '') {
    if (spec.emptyOmits) return ''
    if (spec.type.accepts === '') return spec.type.parse('')
    if (!spec.defaulted) return spec.type.unset
    return INVALID
  }
  const value = spec.type.parse(raw)
  return value === undefined ? INVALID : value
}
