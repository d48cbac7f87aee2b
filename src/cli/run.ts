// One exit-code mapping for every command, and one way to report a usage error.
import { UsageError } from '../errors.ts'
import { SettingsError } from '../settings.ts'

export const EXIT = {
  ok: 0,
  // The input was judged and failed: a pod denied, a test failed, a call refused.
  failed: 1,
  // The input, flags or settings are wrong.
  usage: 2,
} as const

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

// "vault-injector <command>: <message>", one line per problem.
export function reportUsageError(command: string, error: UsageError): ExitCode {
  const problems = error instanceof SettingsError ? error.problems : [error.message]
  for (const problem of problems) process.stderr.write(`vault-injector ${command}: ${problem}\n`)
  return EXIT.usage
}

// Runs a command's action: its exit code, or 2 for a usage error. Other errors
// propagate (a stack trace is right for a bug).
export async function runCommand(command: string, action: () => ExitCode | Promise<ExitCode>): Promise<void> {
  try {
    process.exitCode = await action()
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    process.exitCode = reportUsageError(command, error)
  }
}
