// Every injector setting as a command-line option, generated from the settings
// table, so `serve`, `inject` and friends accept the same flags as vault-k8s's
// `agent-inject` (environment variables AGENT_INJECT_* override them).
import { Option, type Command } from 'commander'
import { loadSettings, SETTINGS, SettingsError, type Settings } from '../engine/settings.ts'

export function addSettingsOptions(command: Command, exclude: readonly (keyof Settings)[] = []): Command {
  for (const spec of SETTINGS) {
    if (exclude.includes(spec.key)) continue
    const def = spec.defaultValue === '' ? '' : ` (default: ${JSON.stringify(spec.defaultValue)})`
    command.addOption(new Option(`--${spec.flag} <value>`, `${spec.doc} [env ${spec.env}]${def}`).hideHelp(spec.key === 'podName'))
  }
  return command
}

// Option values as commander stores them (camelCase) → flag name → raw text.
export function settingsFromOptions(options: Record<string, unknown>, env: Record<string, string | undefined> = process.env): Settings {
  const flags: Record<string, string> = {}
  for (const spec of SETTINGS) {
    const camel = spec.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
    const value = options[camel]
    if (typeof value === 'string') flags[spec.flag] = value
  }
  return loadSettings(env, flags)
}

export { SettingsError }
