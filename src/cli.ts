// The `vault-injector` command. Each subcommand lives in src/cli/<name>.ts and
// exports `register(program)`; this file only assembles them. Only the module
// of the subcommand being run is loaded, so the long-running `serve` does not
// carry the CLI-only code (YAML suites, JSON Schema validators) in memory.
// First: on Node.js < 24, a clear message and exit 1 (bin/require-node.js).
import '../bin/require-node.js'
import { Command } from 'commander'
import { VERSION } from './cli/version.ts'

type Register = (program: Command) => void
const COMMANDS: Record<string, () => Promise<{ register: Register }>> = {
  serve: () => import('./cli/serve.ts'),
  inject: () => import('./cli/inject.ts'),
  register: () => import('./cli/register.ts'),
  explain: () => import('./cli/explain.ts'),
  review: () => import('./cli/review.ts'),
  test: () => import('./cli/test.ts'),
  version: () => import('./cli/version.ts'),
  'csi-provider': () => import('./cli/csi-provider.ts'),
}

// argv as process.argv has it; without a known subcommand (help, typos) all are loaded.
export async function buildProgram(argv: readonly string[] = process.argv): Promise<Command> {
  const program = new Command('vault-injector')
    .description('Kubernetes mutating webhook that injects Vault Agent into annotated pods (vault-k8s compatible).')
    .version(VERSION)
    .showHelpAfterError()
    // Usage errors exit 2 (1 is kept for "the input was judged and failed").
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2))
  const named = argv[2]
  const wanted = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS)
  for (const name of wanted) (await COMMANDS[name]!()).register(program)
  return program
}

if (import.meta.main) {
  await (await buildProgram()).parseAsync(process.argv)
}
