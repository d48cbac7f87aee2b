// The stripped build (npm start, the image) behaves exactly as the sources.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { build, rewriteSpecifiers } from '../scripts/build.ts'

const root = new URL('../', import.meta.url).pathname

t.test('specifiers are rewritten, other strings are not', async (t) => {
  t.equal(rewriteSpecifiers(`import { a } from './a.ts'\nexport { b } from "../b/c.ts"\nconst m = await import('../kube/auto-tls.ts')\nconst s = 'file.ts'`), `import { a } from './a.js'\nexport { b } from "../b/c.js"\nconst m = await import('../kube/auto-tls.js')\nconst s = 'file.ts'`)
})

t.test('dist/ gives the same output as src/', async (t) => {
  t.ok(build() > 30)
  const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]))
  for (const file of walk(join(root, 'dist'))) t.notMatch(readFileSync(file, 'utf8'), /from\s+['"]\.{1,2}\/[^'"]+\.ts['"]/, `${file} imports no .ts`)
  const args = ['inject', '-f', join(root, 'test/golden/workloads.yaml')]
  const fromSrc = spawnSync(process.execPath, [join(root, 'src/cli.ts'), ...args], { encoding: 'utf8' })
  const fromDist = spawnSync(process.execPath, [join(root, 'dist/cli.js'), ...args], { encoding: 'utf8' })
  t.equal(fromDist.status, 0, fromDist.stderr)
  t.equal(fromDist.stdout, fromSrc.stdout)
  t.ok(fromDist.stdout.includes('vault-agent'))
})
