// `vault-injector inject`: the offline twin of the webhook. The same engine
// runs on manifests, so CI sees what the cluster will do.
import { Option, type Command } from 'commander'
import { stringify } from 'yaml'
import type { JsonObject } from '../engine/types.ts'
import { loadPolicyFile } from '../policy/load.ts'
import { evaluate, parseLabels, type EvaluateOptions } from './evaluate.ts'
import { readManifests, type ManifestDocument } from './manifests.ts'
import { addAgentSettingsOptions, addInputOptions, settingsFromOptions } from './options.ts'
import { EXIT, runCommand, type ExitCode } from './run.ts'

export type InjectOptions = EvaluateOptions

export interface InjectOutcome {
  documents: ManifestDocument[]
  // Documents the engine changed (by index).
  changed: Set<number>
  diagnostics: string[]
  denied: number
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// Mutates the documents in place; denied documents are left unchanged.
export function injectDocuments(documents: ManifestDocument[], options: InjectOptions): InjectOutcome {
  const outcome: InjectOutcome = { documents, changed: new Set(), diagnostics: [], denied: 0 }
  for (const doc of documents) {
    const object = doc.object
    const items = isObject(object) && object.kind === 'List' && Array.isArray(object.items) ? object.items : [object]
    items.forEach((item, i) => {
      const label = items.length > 1 || item !== object ? `document ${doc.index} item ${i + 1}` : `document ${doc.index}`
      if (injectOne(item, label, options, outcome)) outcome.changed.add(doc.index)
    })
  }
  return outcome
}

function injectOne(object: unknown, label: string, options: InjectOptions, outcome: InjectOutcome): boolean {
  const e = evaluate(object, options)
  if (!e) return false
  const where = `${label} (${e.name})`
  for (const warning of e.warnings) outcome.diagnostics.push(`${where}: warning: ${warning}`)
  for (const finding of e.verdict?.findings ?? []) if (finding.mode === 'audit') outcome.diagnostics.push(`${where}: audit: ${finding.message}`)
  if (e.decision === 'deny') {
    outcome.denied++
    outcome.diagnostics.push(`${where}: denied: ${e.reason}`)
    return false
  }
  if (e.decision === 'skip') {
    outcome.diagnostics.push(`${where}: skipped: ${e.reason}`)
    return false
  }
  // A SecretProviderClass the policy allows: judged, nothing to inject.
  if (e.csi) {
    outcome.diagnostics.push(`${where}: ${e.reason} (CSI provider)`)
    return false
  }
  e.location.replace(e.result.pod)
  outcome.diagnostics.push(`${where}: ${e.reason}`)
  return true
}

export function formatYaml(outcome: InjectOutcome): string {
  return outcome.documents
    .map((doc) => {
      // Unchanged documents keep their comments and layout.
      const text = !outcome.changed.has(doc.index) && doc.source ? doc.source.toString().replace(/^---(\s*\n|\s+)/, '') : stringify(doc.object, { lineWidth: 0 })
      return text.endsWith('\n') ? text : text + '\n'
    })
    .join('---\n')
}

export function formatJson(outcome: InjectOutcome): string {
  const objects = outcome.documents.map((d) => d.object)
  const value = objects.length === 1 ? objects[0] : { apiVersion: 'v1', kind: 'List', items: objects }
  return JSON.stringify(value, null, 2) + '\n'
}

export function register(program: Command): void {
  const command = program
    .command('inject')
    .description(
      'Inject Vault Agent into manifests offline, exactly as the webhook would: Pods and the pod templates of Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job and CronJob. Other kinds pass through unchanged. Exit 0 on success, 1 if any document is denied (denied documents are written unchanged), 2 on a usage or input error.',
    )
    .addOption(new Option('-o, --output <format>', 'output format').choices(['yaml', 'json']).default('yaml'))
    .option('-q, --quiet', 'print only warnings and denials on stderr')
    .option('--strict', 'deny (exit 1) a pod with an annotation under vault.hashicorp.com/ or vault-injector.dev/ that is not known (a typo), instead of warning')
  addInputOptions(command)
  addAgentSettingsOptions(command)
  command.action((opts: Record<string, unknown>) => runCommand('inject', () => runInject(opts)))
}

function runInject(opts: Record<string, unknown>): ExitCode {
  const settings = settingsFromOptions(opts)
  const policy = typeof opts.policy === 'string' ? loadPolicyFile(opts.policy) : undefined
  const documents = readManifests(opts.filename as string[])
  const outcome = injectDocuments(documents, { settings, namespace: String(opts.namespace), policy, namespaceLabels: parseLabels(opts.namespaceLabels as string | undefined), strict: opts.strict === true })
  for (const line of outcome.diagnostics) {
    if (!opts.quiet || !/\): (skipped|injected|re-injected)/.test(line)) process.stderr.write(line + '\n')
  }
  process.stdout.write(opts.output === 'json' ? formatJson(outcome) : formatYaml(outcome))
  return outcome.denied > 0 ? EXIT.failed : EXIT.ok
}
