// Secrets and templates from the per-secret annotations, in name order (vault-k8s
// walks a Go map, so its order changes from run to run; ours never does).
import { posix } from 'node:path'
import { ANNOTATION_TABLE, fullName } from './annotations.ts'
import type { Reading, SecretAnnotations, SecretKey } from './read.ts'
import { valueProblem } from './read.ts'

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

export function collectSecrets(reading: Reading): SecretsResult {
  const errors: string[] = []
  const warnings: string[] = []
  // As in vault-k8s, a secret is declared by a path, an inline template or a
  // template file that is not blank; a blank one declares nothing (a blank
  // path would render `secret ""` and fail the init agent).
  const rawNames = new Set<string>()
  for (const key of ['secret', 'templateFile', 'template'] as const) {
    for (const rawName of reading.secretNames(key)) if (reading.secret(rawName)[key].trim() !== '') rawNames.add(rawName)
  }
  const secrets: SecretSpec[] = []
  for (const rawName of [...rawNames].sort()) {
    const values = reading.secret(rawName)
    const built = buildSecret(values, rawName, values.preserveSecretCase ? rawName : rawName.toLowerCase(), reading.pod.defaultTemplate)
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

function buildSecret(values: SecretAnnotations, rawName: string, name: string, defaultTemplate: string): SecretSpec | string {
  const { secret: path, template: contents, templateFile: source, secretVolumePath: mountPath, file } = values
  const destination = file ? posix.join(mountPath, file) : posix.join(mountPath, name)
  if (destination !== mountPath && !destination.startsWith(mountPath.endsWith('/') ? mountPath : mountPath + '/')) {
    return valueProblem(`${fullName(ANNOTATION_TABLE.file)}-${rawName}`, file, `leaves the secrets volume ${mountPath}; use a name or a relative path inside it`)
  }
  const secret: SecretSpec = {
    name,
    rawName,
    path,
    templateKind: '',
    mountPath,
    destination,
    leftDelim: values.leftDelim,
    rightDelim: values.rightDelim,
    errorOnMissingKey: values.errorOnMissingKey,
    pathsRead: [],
  }
  if (contents !== '') {
    secret.contents = contents
    secret.templateKind = 'inline'
    secret.pathsRead = pathsReadByTemplate(contents)
  } else if (source !== '') {
    secret.source = source
    secret.templateKind = `file:${source}`
  } else {
    const render = DEFAULT_TEMPLATES[defaultTemplate] ?? DEFAULT_TEMPLATES.map!
    secret.contents = render(path)
    secret.templateKind = `default-${defaultTemplate}`
  }
  if (path !== '' && !secret.pathsRead.includes(path)) secret.pathsRead.unshift(path)
  if (values.perms) secret.perms = values.perms
  if (values.command) secret.command = values.command
  return secret
}

// Per-secret annotations naming a secret that nothing declares do nothing in
// vault-k8s either; say so instead of ignoring them silently.
function warnUnmatched(reading: Reading, rawNames: ReadonlySet<string>, warnings: string[]): void {
  for (const key of SECRET_DETAIL_KEYS) {
    for (const suffix of reading.secretNames(key)) {
      if (!rawNames.has(suffix)) warnings.push(`${fullName(ANNOTATION_TABLE[key])}-${suffix}: no agent-inject-secret-${suffix} or agent-inject-template-${suffix} declares this secret; ignored`)
    }
  }
}

// The per-secret annotations that describe a secret without declaring one.
const SECRET_DETAIL_KEYS: readonly SecretKey[] = ['templateFile', 'file', 'perms', 'command', 'leftDelim', 'rightDelim', 'errorOnMissingKey', 'secretVolumePath', 'preserveSecretCase']
