// All injector settings: the agents' defaults (engine/settings.ts) and the
// server's own (webhook/settings.ts). Each is read from its AGENT_INJECT_*
// environment variable (which wins, as in vault-k8s), else its flag, else its
// default, and parsed with the same value parsers the annotations use. Every
// bad setting is reported at once, before anything starts.
import { UsageError } from './errors.ts'
import { ENGINE_SETTINGS, type EngineSettings, type SettingSpec } from './engine/settings.ts'
import { valueProblem } from './engine/read.ts'
import { SERVER_SETTINGS, type ServerSettings } from './webhook/settings.ts'

export type Settings = EngineSettings & ServerSettings
export type { SettingSpec }

export const SETTINGS: readonly SettingSpec<keyof Settings>[] = [...SERVER_SETTINGS, ...ENGINE_SETTINGS]

// One message per bad setting, each naming the variable or flag, the value and what is accepted.
export class SettingsError extends UsageError {
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(problems.join('\n'))
    this.problems = problems
  }
}

// The value a setting holds: booleans and numbers parsed, text as written.
// "" keeps the default (vault-k8s skips empty variables; charts render some
// empty), except where it means "leave the field out" (resources, backoffs).
function settingValue(spec: SettingSpec, raw: string): { value: unknown } | undefined {
  if (raw === '' && spec.emptyOmits) return { value: '' }
  const text = raw === '' ? spec.defaultValue : raw
  if (text === '') return { value: '' }
  const parsed = spec.type.parse(text)
  if (parsed === undefined) return undefined
  return { value: typeof parsed === 'boolean' || typeof parsed === 'number' ? parsed : text }
}

// Checks between settings.
function crossProblems(settings: Settings): string[] {
  if ((settings.tlsCertFile === '') !== (settings.tlsKeyFile === '')) return ['AGENT_INJECT_TLS_CERT_FILE and AGENT_INJECT_TLS_KEY_FILE go together: set both or neither']
  return []
}

// `read` limits which settings come from env and flags (the rest keep their
// defaults): the offline commands read only the agents' settings.
export function loadSettings(env: Readonly<Record<string, string | undefined>>, flags: Readonly<Record<string, string | undefined>>, read: readonly SettingSpec[] = SETTINGS): Settings {
  const out: Record<string, unknown> = {}
  const problems: string[] = []
  for (const spec of SETTINGS) {
    const wanted = read.includes(spec)
    // An empty variable leaves the flag in force, as in vault-k8s (except where "" means "leave it out").
    const envValue = wanted ? env[spec.env] : undefined
    const fromEnv = envValue === '' && !spec.emptyOmits ? undefined : envValue
    const fromFlag = wanted ? flags[spec.flag] : undefined
    const [raw, origin] = fromEnv !== undefined ? [fromEnv, spec.env] : fromFlag !== undefined ? [fromFlag, `--${spec.flag}`] : [spec.defaultValue, `the default of --${spec.flag}`]
    const parsed = settingValue(spec, raw)
    if (parsed) out[spec.key] = parsed.value
    else problems.push(valueProblem(origin, raw, spec.type.accepts))
  }
  if (problems.length > 0) throw new SettingsError(problems)
  const settings = out as unknown as Settings
  const cross = crossProblems(settings)
  if (cross.length > 0) throw new SettingsError(cross)
  return settings
}

export function defaultSettings(): Settings {
  return loadSettings({}, {})
}
