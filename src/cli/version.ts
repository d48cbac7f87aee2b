// `vault-injector version`: the version of this program and of the Node.js
// running it (what a bug report needs); -o json for scripts. VERSION, from
// package.json (read once), is also what --version, the server's startup line
// and its build-info metric say. Two folders below the package root, as the
// build's chunks are, so the relative path holds in src/ and dist/.
import { Option, type Command } from 'commander'
import { readFileSync } from 'node:fs'

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

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
