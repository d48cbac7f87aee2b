// `vault-injector review -f review.json`: AdmissionReview in, AdmissionReview
// out, through the very function the server answers with.
import type { Command } from 'commander'
import { readFileSync } from 'node:fs'
import { UsageError } from '../errors.ts'
import { loadPolicyFile } from '../policy/load.ts'
import { admit } from '../webhook/admission.ts'
import { parseLabels } from './evaluate.ts'
import { addAgentSettingsOptions, addPolicyOptions, settingsFromOptions } from './options.ts'
import { EXIT, runCommand } from './run.ts'

export function register(program: Command): void {
  const command = program
    .command('review')
    .description('Answer an AdmissionReview exactly as the server would (stdout), for debugging a live problem offline. Exit 0 when answered (allowed or not), 2 when the input is not a valid AdmissionReview.')
    .requiredOption('-f, --filename <file>', 'AdmissionReview JSON, or - for stdin')
  addPolicyOptions(command)
  addAgentSettingsOptions(command)
  command.action((opts: Record<string, unknown>) =>
    runCommand('review', () => {
      const settings = settingsFromOptions(opts)
      const policy = typeof opts.policy === 'string' ? loadPolicyFile(opts.policy) : undefined
      const labels = parseLabels(opts.namespaceLabels as string | undefined)
      const file = String(opts.filename)
      let text: string
      try {
        text = readFileSync(file === '-' ? 0 : file, 'utf8')
      } catch (error) {
        throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
      }
      let body: unknown
      try {
        body = JSON.parse(text)
      } catch (error) {
        throw new UsageError(`${file}: not valid JSON: ${(error as Error).message}`)
      }
      const outcome = admit(body, { settings, policy, namespaceLabels: (ns) => ({ 'kubernetes.io/metadata.name': ns, ...labels }) })
      process.stdout.write(JSON.stringify(outcome.body, null, 2) + '\n')
      if (outcome.audit) process.stderr.write(JSON.stringify({ msg: 'admission', ...outcome.audit }) + '\n')
      return outcome.statusCode === 200 ? EXIT.ok : EXIT.usage
    }),
  )
}
