// vault-injector version, and --version, say package.json's version.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('../../', import.meta.url).pathname
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
const run = (args: string[]) => spawnSync(process.execPath, [join(root, 'bin/vault-injector.js'), ...args], { encoding: 'utf8' })

t.test('version: text and JSON', async (t) => {
  const text = run(['version'])
  t.equal(text.status, 0, text.stderr)
  t.equal(text.stdout, `vault-injector ${pkg.version} (Node.js ${process.version}, ${process.platform}/${process.arch})\n`)
  const json = run(['version', '-o', 'json'])
  t.equal(json.status, 0, json.stderr)
  t.same(JSON.parse(json.stdout), { version: pkg.version, node: process.version, platform: `${process.platform}/${process.arch}` })
  t.equal(run(['--version']).stdout, `${pkg.version}\n`)
})
