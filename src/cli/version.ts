// `vault-injector version`: the version of this program and of the Node.js
// running it (what a bug report needs); -o json for scripts.
import { Option, type Command } from 'commander'
import { VERSION } from '../version.ts'

export function versionInfo(): { version: string; node: string; platform: string } {
  return { version: VERSION, node: process.version, platform: `${process.platform}/${process.arch}` }
}

export function register(program: Command): void {
  program
    .command('version')
    .description('Print the version of vault-injector and of the Node.js running it.')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action((opts: { output: string }) => {
      const info = versionInfo()
      process.stdout.write(opts.output === 'json' ? JSON.stringify(info) + '\n' : `vault-injector ${info.version} (Node.js ${info.node}, ${info.platform})\n`)
    })
}
