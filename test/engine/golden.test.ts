// Golden files: test/golden/<case>.yaml → <case>.injected.yaml, the exact
// output of `vault-injector inject`, followed by the decoded agent
// configurations so a reviewer can read them. Refresh with
// REFRESH_GOLDEN=true npm test, then read the diff before committing it.
import t from 'tap'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { stringify } from 'yaml'
import { injectDocuments, formatYaml } from '../../src/cli/inject.ts'
import { parseManifests } from '../../src/cli/manifests.ts'
import { defaultSettings } from '../../src/settings.ts'

const dir = new URL('../golden/', import.meta.url)
const refresh = process.env.REFRESH_GOLDEN === 'true'

type Obj = Record<string, any>

function decodedConfigs(value: unknown, out: Record<string, unknown> = {}, where = ''): Record<string, unknown> {
  if (Array.isArray(value)) value.forEach((v, i) => decodedConfigs(v, out, where))
  else if (value && typeof value === 'object') {
    const obj = value as Obj
    const config = Array.isArray(obj.env) ? obj.env.find((e: Obj) => e?.name === 'VAULT_CONFIG') : undefined
    if (config && typeof obj.name === 'string') {
      out[`${where}${obj.name}`] = JSON.parse(Buffer.from(config.value, 'base64').toString('utf8'))
    }
    const name = typeof obj.metadata?.name === 'string' ? `${obj.kind ?? ''} ${obj.metadata.name} / ` : where
    for (const v of Object.values(obj)) decodedConfigs(v, out, name)
  }
  return out
}

function render(input: string): string {
  const documents = parseManifests(input, 'golden')
  const outcome = injectDocuments(documents, { settings: defaultSettings(), namespace: 'default' })
  const output = formatYaml(outcome)
  const configs = decodedConfigs(documents.map((d) => d.object))
  return (
    output +
    '---\n# Not part of the output: the decoded VAULT_CONFIG of each agent container, for review.\n' +
    '# Diagnostics:\n' + outcome.diagnostics.map((d) => `#   ${d}\n`).join('') +
    stringify(configs, { lineWidth: 0 })
  )
}

const cases = readdirSync(dir).filter((f) => f.endsWith('.yaml') && !f.endsWith('.injected.yaml')).sort()
t.ok(cases.length >= 8, 'golden cases exist')
for (const file of cases) {
  t.test(file, async (t) => {
    const actual = render(readFileSync(new URL(file, dir), 'utf8'))
    const goldenUrl = new URL(file.replace(/\.yaml$/, '.injected.yaml'), dir)
    if (refresh) writeFileSync(goldenUrl, actual)
    t.equal(actual, readFileSync(goldenUrl, 'utf8'), `${file} matches its golden (REFRESH_GOLDEN=true to update)`)
  })
}
