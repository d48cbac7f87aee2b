// The `vault-injector` command. Each subcommand lives in src/cli/<name>.ts and
// exports `register(program)`; this file only assembles them.
import { Command } from 'commander'
import { readFileSync } from 'node:fs'
import { register as registerExplain } from './cli/explain.ts'
import { register as registerInject } from './cli/inject.ts'
import { register as registerRegister } from './cli/register.ts'
import { register as registerReview } from './cli/review.ts'
import { register as registerServe } from './cli/serve.ts'
import { register as registerTest } from './cli/test.ts'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

export function buildProgram(): Command {
  const program = new Command('vault-injector')
    .description('Kubernetes mutating webhook that injects Vault Agent into annotated pods (vault-k8s compatible).')
    .version(pkg.version)
    .showHelpAfterError()
    // Usage errors exit 2 (1 is kept for "the input was judged and failed").
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2))
  registerServe(program)
  registerInject(program)
  registerRegister(program)
  registerExplain(program)
  registerReview(program)
  registerTest(program)
  return program
}

if (import.meta.main) {
  await buildProgram().parseAsync(process.argv)
}
