// npm run docs: regenerate docs/annotations.md from the annotation table.
import { writeFileSync } from 'node:fs'
import { annotationsMarkdown } from '../src/docs.ts'

writeFileSync(new URL('../docs/annotations.md', import.meta.url), annotationsMarkdown())
process.stdout.write('wrote docs/annotations.md\n')
