// The flag groups the commands share, so each is written once:
// - the agents' defaults (ENGINE_SETTINGS) on serve, inject, explain and review;
// - the server's own settings (SERVER_SETTINGS) on serve only;
// - manifest input, namespace and policy on inject, explain and review.
// Each setting's AGENT_INJECT_* environment variable overrides its flag, as in
// vault-k8s's `agent-inject`.
import { Option, type Command } from 'commander'
import { ENGINE_SETTINGS } from '../engine/settings.ts'
import { loadSettings, type Settings, type SettingSpec } from '../settings.ts'
import { SERVER_SETTINGS } from '../webhook/settings.ts'

function addSettings(command: Command, table: readonly SettingSpec[], heading: string): Command {
  for (const spec of table) {
    const def = spec.defaultValue === '' ? '' : ` (default: ${JSON.stringify(spec.defaultValue)})`
    command.addOption(new Option(`--${spec.flag} <value>`, `${spec.doc} [env ${spec.env}]${def}`).hideHelp(spec.key === 'podName').helpGroup(heading))
  }
  return command
}

const AGENT_HEADING = 'Agent defaults (each also an AGENT_INJECT_* variable, which wins):'

// Every setting: the server's and the agents' defaults.
export function addServeSettingsOptions(command: Command): Command {
  addSettings(command, SERVER_SETTINGS, 'Server settings (each also an AGENT_INJECT_* variable, which wins):')
  return addSettings(command, ENGINE_SETTINGS, AGENT_HEADING)
}

// The agents' defaults only: what changes an injection.
export function addAgentSettingsOptions(command: Command): Command {
  return addSettings(command, ENGINE_SETTINGS, AGENT_HEADING)
}

// Option values as commander stores them (camelCase) → flag name → raw text.
// Commands without the server's flags read only the agents' settings (a bad
// AGENT_INJECT_LISTEN in the environment is no business of `inject`).
export function settingsFromOptions(options: Record<string, unknown>, env: Record<string, string | undefined> = process.env, table: readonly SettingSpec[] = ENGINE_SETTINGS): Settings {
  const flags: Record<string, string> = {}
  for (const spec of table) {
    const camel = spec.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
    const value = options[camel]
    if (typeof value === 'string') flags[spec.flag] = value
  }
  return loadSettings(env, flags, table)
}

// --policy and --namespace-labels.
export function addPolicyOptions(command: Command): Command {
  return command
    .option('--policy <file>', 'an InjectorPolicy to apply, as the webhook does with AGENT_INJECT_POLICY_FILE')
    .option('--namespace-labels <k=v,...>', 'labels of the namespace, for policy rules that select by label')
}

// -f (repeatable), -n, --policy and --namespace-labels.
export function addInputOptions(command: Command): Command {
  command
    .requiredOption('-f, --filename <path...>', 'file, directory (its .yaml/.yml/.json files) or - for stdin; repeatable')
    .option('-n, --namespace <name>', 'namespace for documents that name none', 'default')
  return addPolicyOptions(command)
}
