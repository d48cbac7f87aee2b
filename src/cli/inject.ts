import type { Command } from 'commander'

export function register(program: Command): void {
  program.command('inject').description('Inject into manifests offline.').action(() => {
    process.exitCode = 2
  })
}
