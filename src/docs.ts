// The annotation and settings reference, generated from the two tables.
// docs/annotations.md is this function's output (`npm run docs`); a test keeps
// it current.
import { ANNOTATIONS, fullName, type AnnotationSpec, type Group } from './engine/annotations.ts'
import { ENGINE_SETTINGS, type SettingSpec } from './engine/settings.ts'
import { SERVER_SETTINGS } from './webhook/settings.ts'

const GROUP_TITLES: Record<Group, string> = {
  core: 'Core and control',
  secrets: 'Secrets and templates',
  vault: 'Vault connection and TLS',
  auth: 'Authentication',
  runtime: 'Resources, security and runtime',
  cache: 'Cache and listener',
  telemetry: 'Telemetry',
  'vault-injector': 'vault-injector\'s own (not in vault-k8s)',
}

function keyOf(a: AnnotationSpec): string {
  if (a.scope === 'secret') return `\`${fullName(a)}-<name>\``
  if (a.scope === 'key') return `\`${fullName(a)}-<key>\``
  if (a.scope === 'both') return `\`${fullName(a)}\`, \`${fullName(a)}-<name>\``
  return `\`${fullName(a)}\``
}

function defaultOf(a: AnnotationSpec): string {
  const setting = a.setting ? ENGINE_SETTINGS.find((s) => s.key === a.setting) : undefined
  if (setting) return `${setting.defaultValue === '' ? 'unset' : `\`${setting.defaultValue}\``} (\`${setting.env}\`)`
  if (a.defaultValue !== undefined) return `\`${a.defaultValue}\``
  return '—'
}

// What a value parser accepts, from its "is not ..." message.
function acceptsOf(x: { type: { accepts: string }; emptyOmits?: boolean | undefined }): string {
  const text = x.type.accepts.replace(/^is not (accepted )?/, '').replace(/^an? /, '')
  const base = text === '' ? 'text' : text
  return x.emptyOmits ? `${base}; "" omits` : base
}

function settingsTable(lines: string[], title: string, intro: string, table: readonly SettingSpec[]): void {
  lines.push('', title, '', intro, '', '| Environment | Flag | Default | Accepts | Meaning |', '|---|---|---|---|---|')
  for (const s of table) {
    lines.push(`| \`${s.env}\` | \`--${s.flag}\` | ${s.defaultValue === '' ? 'unset' : `\`${escapeCell(s.defaultValue)}\``} | ${escapeCell(acceptsOf(s))} | ${escapeCell(s.doc)}${s.ours ? ' *(vault-injector)*' : ''} |`)
  }
}

const escapeCell = (text: string): string => text.replace(/\|/g, '\\|')

export function annotationsMarkdown(): string {
  const lines = [
    '# Annotation and settings reference',
    '',
    '<!-- Generated from src/engine/annotations.ts, src/engine/settings.ts and src/webhook/settings.ts by `npm run docs`. Do not edit. -->',
    '',
    `vault-injector reads the ${ANNOTATIONS.filter((a) => a.prefix === 'vault.hashicorp.com/').length} \`vault.hashicorp.com/\` annotations of vault-k8s with the same names, defaults and meanings, plus its own under \`vault-injector.dev/\`. A value that does not parse denies the pod with a message naming the annotation, the value and what is accepted; a boolean set to \"\" reads as false, as in vault-k8s. Where the answer differs from vault-k8s on purpose, the row says why (and the README's compatibility section lists every case). Precedence: the pod's annotation, then the namespace default from the policy file, then the injector-wide setting, then the built-in default.`,
    '',
  ]
  for (const group of Object.keys(GROUP_TITLES) as Group[]) {
    lines.push(`## ${GROUP_TITLES[group]}`, '', '| Annotation | Default | Accepts | Meaning |', '|---|---|---|---|')
    for (const a of ANNOTATIONS.filter((x) => x.group === group)) {
      lines.push(`| ${keyOf(a)} | ${escapeCell(defaultOf(a))} | ${escapeCell(acceptsOf(a))} | ${escapeCell(a.doc)} |`)
    }
    lines.push('')
  }
  lines.push(
    '## Injector settings',
    '',
    'Each setting is an environment variable (as in vault-k8s; it wins over the flag; an empty variable counts as unset) and a flag. Every value is checked at start with the same parsers as the annotations: a bad one stops `vault-injector serve` with exit code 2 and a message naming it.',
  )
  settingsTable(lines, '### Server settings', 'Flags of `vault-injector serve`.', SERVER_SETTINGS)
  settingsTable(lines, '### Agent defaults', 'Flags of `vault-injector serve`, `inject`, `explain` and `review`.', ENGINE_SETTINGS)
  lines.push('')
  return lines.join('\n')
}
