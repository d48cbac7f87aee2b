// `vault-injector review -f review.json`: AdmissionReview in, AdmissionReview
// out, through the very function the server answers with.
import type { Command } from 'commander'
import { readFileSync } from 'node:fs'
import { loadPolicyFile, PolicyError } from '../policy/load.ts'
import { admit } from '../webhook/admission.ts'
import { parseLabels, UsageError } from './evaluate.ts'
import { addSettingsOptions, settingsFromOptions, SettingsError } from './settings-options.ts'

export function register(program: Command): void {
  const command = program
    .command('review')
    .description('Answer an AdmissionReview exactly as the server would (stdout), for debugging a live problem offline. Exit 0 when answered (allowed or not), 2 when the input is not a valid AdmissionReview.')
    .requiredOption('-f, --filename <file>', 'AdmissionReview JSON, or - for stdin')
    .option('--policy <file>', 'an InjectorPolicy, as AGENT_INJECT_POLICY_FILE')
    .option('--namespace-labels <k=v,...>', 'labels of the request\'s namespace, for policy label selectors')
  addSettingsOptions(command, ['namespace', 'podName'])
  command.action((opts: Record<string, unknown>) => {
    try {
      const settings = settingsFromOptions(opts)
      const policy = typeof opts.policy === 'string' ? loadPolicyFile(opts.policy) : undefined
      const labels = parseLabels(opts.namespaceLabels as string | undefined)
      const file = String(opts.filename)
      const text = readFileSync(file === '-' ? 0 : file, 'utf8')
      let body: unknown
      try {
        body = JSON.parse(text)
      } catch (error) {
        throw new UsageError(`${file}: not valid JSON: ${(error as Error).message}`)
      }
      const outcome = admit(body, { settings, policy, namespaceLabels: (ns) => ({ 'kubernetes.io/metadata.name': ns, ...labels }) })
      process.stdout.write(JSON.stringify(outcome.body, null, 2) + '\n')
      if (outcome.audit) process.stderr.write(JSON.stringify({ msg: 'admission', ...outcome.audit }) + '\n')
      process.exitCode = outcome.statusCode === 200 ? 0 : 2
    } catch (error) {
      if (!(error instanceof SettingsError || error instanceof PolicyError || error instanceof UsageError || (error as NodeJS.ErrnoException).code === 'ENOENT')) throw error
      process.stderr.write(`vault-injector review: ${(error as Error).message}\n`)
      process.exitCode = 2
    }
  })
}
