import t from 'tap'
import { readFileSync } from 'node:fs'
import { annotationsMarkdown } from '../../src/docs.ts'
import { ANNOTATIONS, fullName } from '../../src/engine/annotations.ts'

t.test('docs/annotations.md is generated from the table and current', async (t) => {
  const committed = readFileSync(new URL('../../docs/annotations.md', import.meta.url), 'utf8')
  t.equal(committed, annotationsMarkdown(), 'run `npm run docs` after changing the annotation or settings table')
  for (const a of ANNOTATIONS) t.ok(committed.includes(fullName(a)), `${fullName(a)} is documented`)
})
