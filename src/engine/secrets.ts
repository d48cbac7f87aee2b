// Secrets and templates from the per-secret annotations, in name order (vault-k8s
// walks a Go map, so its order changes from run to run; ours never does).
import { posix } from 'node:path'
import type { Reading } from './read.ts'
import { showValue } from './read.ts'
import { parseGoBool } from './settings.ts'

export interface SecretSpec {
  // File name (lowercased unless preserve-case) and the annotation suffix as written.
  name: string
  rawName: string
  // Vault path; "" for a template-only secret.
  path: string
  contents?: string
  source?: string
  templateKind: string
  mountPath: string
  destination: string
  perms?: string
  command?: string
  leftDelim: string
  rightDelim: string
  errorOnMissingKey: boolean
  pathsRead: string[]
}

const DEFAULT_TEMPLATES: Record<string, (path: string) => string> = {
  map: (path) => `{{ with secret "${path}" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}`,
  json: (path) => `{{ with secret "${path}" }}{{ .Data | toJSON }}\n{{ end }}`,
}

// Vault paths a template reads with `secret "<path>"` (the common form; paths
// built at render time cannot be known here).
export function pathsReadByTemplate(contents: string): string[] {
  const paths = new Set<string>()
  for (const match of contents.matchAll(/\bsecret\s+"([^"]*)"/g)) {
    if (match[1]) paths.add(match[1])
  }
  return [...paths]
}

export interface SecretsResult {
  secrets: SecretSpec[]
  errors: string[]
  warnings: string[]
}

function lookup(map: ReadonlyMap<string, string>, rawName: string): string | undefined {
  return map.get(rawName)
}

export function collectSecrets(reading: Reading, secretVolumePath: string, defaultTemplate: string): SecretsResult {
  const errors: string[] = []
  const warnings: string[] = []
  const secretPaths = reading.perSecret('agent-inject-secret')
  const inline = reading.perSecret('agent-inject-template')
  const rawNames = new Set([...secretPaths.keys(), ...inline.keys()])
  const preserveAll = reading.get<boolean>('preserve-secret-case') ?? false
  const preserve = reading.perSecret('preserve-secret-case')
  const secrets: SecretSpec[] = []
  for (const rawName of [...rawNames].sort()) {
    const own = preserve.get(rawName)
    const keepCase = own === undefined ? preserveAll : parseGoBool(own) === true
    const built = buildSecret(reading, rawName, keepCase ? rawName : rawName.toLowerCase(), secretVolumePath, defaultTemplate)
    if (typeof built === 'string') errors.push(built)
    else secrets.push(built)
  }
  warnUnmatched(reading, rawNames, warnings)
  const seen = new Map<string, string>()
  for (const secret of secrets) {
    const other = seen.get(secret.destination)
    if (other !== undefined) {
      errors.push(`vault.hashicorp.com/agent-inject-secret-${secret.rawName}: renders to ${secret.destination}, as agent-inject-secret-${other} does; give one of them agent-inject-file-${secret.rawName}`)
    }
    seen.set(secret.destination, secret.rawName)
  }
  return { secrets, errors, warnings }
}

function buildSecret(reading: Reading, rawName: string, name: string, globalMount: string, defaultTemplate: string): SecretSpec | string {
  const path = lookup(reading.perSecret('agent-inject-secret'), rawName) ?? ''
  const contents = lookup(reading.perSecret('agent-inject-template'), rawName)
  const source = lookup(reading.perSecret('agent-inject-template-file'), rawName)
  const mountPath = lookup(reading.perSecret('secret-volume-path'), rawName) ?? globalMount
  const file = lookup(reading.perSecret('agent-inject-file'), rawName)
  const destination = file ? posix.join(mountPath, file) : posix.join(mountPath, name)
  if (destination !== mountPath && !destination.startsWith(mountPath.endsWith('/') ? mountPath : mountPath + '/')) {
    return `vault.hashicorp.com/agent-inject-file-${rawName}: ${showValue(file ?? '')} leaves the secrets volume ${mountPath}; use a name or a relative path inside it`
  }
  const errorOnMissing = lookup(reading.perSecret('error-on-missing-key'), rawName)
  const secret: SecretSpec = {
    name,
    rawName,
    path,
    templateKind: '',
    mountPath,
    destination,
    leftDelim: lookup(reading.perSecret('agent-template-left-delim'), rawName) ?? '{{',
    rightDelim: lookup(reading.perSecret('agent-template-right-delim'), rawName) ?? '}}',
    errorOnMissingKey: errorOnMissing !== undefined && parseGoBool(errorOnMissing) === true,
    pathsRead: [],
  }
  if (contents !== undefined && contents !== '') {
    secret.contents = contents
    secret.templateKind = 'inline'
    secret.pathsRead = pathsReadByTemplate(contents)
  } else if (source !== undefined && source !== '') {
    secret.source = source
    secret.templateKind = `file:${source}`
  } else {
    const render = DEFAULT_TEMPLATES[defaultTemplate] ?? DEFAULT_TEMPLATES.map!
    secret.contents = render(path)
    secret.templateKind = `default-${defaultTemplate}`
  }
  if (path !== '' && !secret.pathsRead.includes(path)) secret.pathsRead.unshift(path)
  const perms = lookup(reading.perSecret('agent-inject-perms'), rawName)
  if (perms) secret.perms = perms
  const command = lookup(reading.perSecret('agent-inject-command'), rawName)
  if (command) secret.command = command
  return secret
}

// Per-secret annotations naming a secret that nothing declares do nothing in
// vault-k8s either; say so instead of ignoring them silently.
function warnUnmatched(reading: Reading, rawNames: ReadonlySet<string>, warnings: string[]): void {
  const perSecretRows = ['agent-inject-template-file', 'agent-inject-file', 'agent-inject-perms', 'agent-inject-command', 'agent-template-left-delim', 'agent-template-right-delim', 'error-on-missing-key', 'secret-volume-path', 'preserve-secret-case']
  for (const row of perSecretRows) {
    for (const suffix of reading.perSecret(row).keys()) {
      if (!rawNames.has(suffix)) warnings.push(`vault.hashicorp.com/${row}-${suffix}: no agent-inject-secret-${suffix} or agent-inject-template-${suffix} declares this secret; ignored`)
    }
  }
}
