// The server command the benchmarks run: exactly `npm start`'s (Node flags
// included), read from package.json so the two cannot drift.
import { readFileSync } from 'node:fs'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }

export function startArgs(): string[] {
  const [command, ...args] = pkg.scripts.start!.split(/\s+/)
  if (command !== 'node') throw new Error(`npm start is not a node command: ${pkg.scripts.start}`)
  return args
}
