import type { Command } from 'commander'

// Placeholder until the webhook server lands.
export function register(program: Command): void {
  program.command('serve').description('Run the HTTPS admission webhook.').action(() => {
    process.stderr.write('serve: not implemented yet\n')
    process.exitCode = 2
  })
}
