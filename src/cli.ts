// The `vault-injector` command. Each subcommand lives in src/cli/<name>.ts and
// exports `register(program)`; this file only assembles them. Only the module
// of the subcommand being run is loaded, so the long-running `serve` does not
// carry the CLI-only code (YAML suites, JSON Schema validators) in memory.
// First: on Node.js < 24, a clear message and exit 1 (bin/require-node.js).
import '../bin/require-node.js'
import { Command } from 'commander'
import { VERSION } from './cli/version.ts'

type Register = (program: Command) => void
// vault-k8s's name for its server command, as vault-helm's chart runs it
// (args: ["agent-inject", "2>&1"]): the same as `serve`.
const ALIASES: Record<string, string> = { 'agent-inject': 'serve' }

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
  const named = argv[2] === undefined ? undefined : (ALIASES[argv[2]] ?? argv[2])
  const wanted = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS)
  for (const name of wanted) (await COMMANDS[name]!()).register(program)
  return program
}

// vault-helm writes a shell redirection into the container's args; with no
// shell in between, `2>&1` reaches the program as a literal argument. After
// vault-k8s's command name it is dropped; anywhere else it stays an error.
export function dropShellRedirect(argv: readonly string[]): string[] {
  if (argv[2] !== 'agent-inject') return [...argv]
  return argv.filter((arg, i) => i < 3 || arg !== '2>&1')
}

if (import.meta.main) {
  const argv = dropShellRedirect(process.argv)
  await (await buildProgram(argv)).parseAsync(argv)
}
