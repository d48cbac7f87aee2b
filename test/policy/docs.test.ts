// docs/policy.md is the policy's reference: every example in it must load,
// and every field of the schema must be documented there (and the other way).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { ESCAPE_HATCHES } from '../../src/policy/hatches.ts'
import { parsePolicy } from '../../src/policy/load.ts'

const root = new URL('../../', import.meta.url)
const docs = readFileSync(new URL('docs/policy.md', root), 'utf8')
const readme = readFileSync(new URL('README.md', root), 'utf8')
const schema = JSON.parse(readFileSync(new URL('schemas/policy.schema.json', root), 'utf8'))

function policyExamples(markdown: string): string[] {
  return [...markdown.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((y) => /kind: InjectorPolicy/.test(y))
}

t.test('every InjectorPolicy example in docs/policy.md and the README loads', async (t) => {
  const examples = [...policyExamples(docs), ...policyExamples(readme)]
  t.ok(examples.length >= 8, `${examples.length} examples`)
  examples.forEach((yaml, i) => t.doesNotThrow(() => parsePolicy(yaml, `example ${i + 1}`), `example ${i + 1}`))
})

t.test('every schema field is documented, and only those', async (t) => {
  const rule = schema.$defs.rule.properties
  for (const field of Object.keys(rule)) t.match(docs, new RegExp(`### \`${field}\``), `rule field ${field}`)
  for (const field of Object.keys(rule.allow.properties)) t.match(docs, new RegExp(`\\| \`${field}\` \\|`), `allow.${field}`)
  for (const field of Object.keys(rule.require.properties)) t.match(docs, new RegExp(`\\| \`${field}\` \\|`), `require.${field}`)
  const hatchSection = docs.slice(docs.indexOf('### Escape hatches'), docs.indexOf('### `require`'))
  const documented = hatchSection.split('\n').filter((l) => l.startsWith('| `')).flatMap((l) => [...l.split(' | ')[0]!.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!))
  t.same(schema.$defs.escapeHatch.enum, [...ESCAPE_HATCHES], 'the schema lists the hatches the code knows')
  for (const hatch of ESCAPE_HATCHES) t.ok(documented.includes(hatch), `escape hatch ${hatch} has a row`)
})
