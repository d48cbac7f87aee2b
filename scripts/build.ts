// npm run build: src/**/*.ts → dist/**/*.js with the types stripped, for
// `npm start` and the image. The code is the same (Node's own type stripper);
// running plain JavaScript spares the server the stripper's memory (~29 MiB
// resident) and its start-up work. Tests run the .ts sources directly.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { stripTypeScriptTypes } from 'node:module'
import { dirname, join, relative } from 'node:path'

const root = new URL('../', import.meta.url).pathname
const src = join(root, 'src')
const out = join(root, 'dist')

// Relative specifiers ending in .ts become .js (static, re-export and dynamic imports).
export function rewriteSpecifiers(code: string): string {
  return code.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1$2.js$3')
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []))
}

export function build(): number {
  rmSync(out, { recursive: true, force: true })
  const all = files(src)
  for (const file of all) {
    const js = rewriteSpecifiers(stripTypeScriptTypes(readFileSync(file, 'utf8'), { mode: 'strip' }))
    const target = join(out, relative(src, file)).replace(/\.ts$/, '.js')
    mkdirSync(dirname(target), { recursive: true })
    writeFileSync(target, js)
  }
  return all.length
}

if (import.meta.main) {
  process.stdout.write(`built ${build()} files into dist/\n`)
}
