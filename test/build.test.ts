// The bundled build (npm start, the image) behaves exactly as the sources.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { build, checkRelativeFiles } from '../scripts/build.ts'

const root = new URL('../', import.meta.url).pathname

t.test('dist/ gives the same output as src/', async (t) => {
  const files = build()
  t.ok(files.includes('dist/cli.js'), `dist/cli.js among ${files}`)
  t.same(checkRelativeFiles(), [], 'every file the build reads relative to itself is there')
  for (const args of [['inject', '-f', join(root, 'test/golden/workloads.yaml')], ['--version']]) {
    const fromSrc = spawnSync(process.execPath, [join(root, 'src/cli.ts'), ...args], { encoding: 'utf8' })
    const fromDist = spawnSync(process.execPath, [join(root, 'dist/cli.js'), ...args], { encoding: 'utf8' })
    t.equal(fromDist.status, 0, fromDist.stderr)
    t.equal(fromDist.stdout, fromSrc.stdout, args.join(' '))
  }
})

t.test('a file read from the wrong place is found', async (t) => {
  const dir = t.testdir({ chunks: {} })
  mkdirSync(join(dir, 'chunks'), { recursive: true })
  writeFileSync(join(dir, 'chunks/a.js'), 'const s=JSON.parse(readFileSync(new URL("../nowhere/x.json",import.meta.url)));const c=new URL("../../certs/",import.meta.url);')
  const problems = checkRelativeFiles(dir)
  t.equal(problems.length, 1)
  t.match(problems[0], /nowhere\/x\.json/)
})
