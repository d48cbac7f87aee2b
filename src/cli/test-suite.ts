// `vault-injector test`: injector test suites kept beside the manifests, in
// the manner of `kyverno test` and `gator verify`. Every case also gets the
// built-in checks: idempotent, deterministic, and a valid Pod.
import { Ajv2020 } from 'ajv/dist/2020.js'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { parse } from 'yaml'
import { injectPod } from '../engine/index.ts'
import { loadSettings, SETTINGS } from '../settings.ts'
import { UsageError } from '../errors.ts'
import type { JsonObject } from '../engine/types.ts'
import { loadPolicyFile } from '../policy/load.ts'
import type { Policy } from '../policy/policy.ts'
import { evaluate, type Evaluation } from './evaluate.ts'
import { formatYaml, injectDocuments } from './inject.ts'
import { podOf, readManifests } from './manifests.ts'

export class SuiteError extends UsageError {}

type Settings = Record<string, string | number | boolean>
interface Assertion {
  document?: number
  pointer: string
  equals?: unknown
  matches?: string
  exists?: boolean
}
interface Expect {
  injected?: boolean
  denied?: string
  warnings?: string[]
  noWarnings?: boolean
  assertions?: Assertion[]
  golden?: string
}
interface Case {
  name: string
  manifests: string[]
  namespace?: string
  namespaceLabels?: Record<string, string>
  policy?: string | null
  settings?: Settings
  expect: Expect
}
interface Suite {
  apiVersion: string
  kind: string
  metadata?: { name?: string }
  policy?: string
  settings?: Settings
  namespace?: string
  namespaceLabels?: Record<string, string>
  cases: Case[]
}

export interface CaseResult {
  suite: string
  name: string
  failures: string[]
  durationMs: number
}

const schema = JSON.parse(readFileSync(new URL('../../schemas/test-suite.schema.json', import.meta.url), 'utf8')) as object
const validateSuite = new Ajv2020({ allErrors: true, strict: false }).compile<Suite>(schema)
const SUITE_FILE = /(^|[-.])injector-test\.ya?ml$/

export function findSuites(target: string): string[] {
  let stat
  try {
    stat = statSync(target)
  } catch {
    throw new SuiteError(`${target}: no such file or directory`)
  }
  if (!stat.isDirectory()) return [target]
  const out: string[] = []
  for (const entry of readdirSync(target, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = join(target, entry.name)
    if (entry.isDirectory() && entry.name !== 'node_modules' && !entry.name.startsWith('.')) out.push(...findSuites(path))
    else if (SUITE_FILE.test(entry.name)) out.push(path)
  }
  return out
}

export function loadSuite(file: string): Suite {
  let document: unknown
  try {
    document = parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new SuiteError(`${file}: ${(error as Error).message.split('\n')[0]}`)
  }
  if (!validateSuite(document)) {
    const problems = (validateSuite.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`)
    throw new SuiteError(`${file}: not a valid InjectorTest suite: ${problems.join('; ')}`)
  }
  return document
}

// Settings by AGENT_INJECT_* name or by flag name.
function settingsFrom(values: Settings): ReturnType<typeof loadSettings> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(values)) {
    const spec = SETTINGS.find((s) => s.env === key || s.flag === key || s.key === key)
    if (!spec) throw new SuiteError(`unknown injector setting "${key}"`)
    env[spec.env] = String(value)
  }
  return loadSettings(env, {})
}

// RFC 6901.
function pointerGet(document: unknown, pointer: string): { found: boolean; value?: unknown } {
  if (pointer === '') return { found: true, value: document }
  let node: unknown = document
  for (const raw of pointer.replace(/^\//, '').split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(node) && /^\d+$/.test(token) && Number(token) < node.length) node = node[Number(token)]
    else if (typeof node === 'object' && node !== null && !Array.isArray(node) && Object.hasOwn(node, token)) node = (node as JsonObject)[token]
    else return { found: false }
  }
  return { found: true, value: node }
}

function podProblems(pod: JsonObject): string[] {
  const problems: string[] = []
  const spec = (pod.spec ?? {}) as { containers?: JsonObject[]; initContainers?: JsonObject[]; volumes?: JsonObject[] }
  const all = [...(spec.initContainers ?? []), ...(spec.containers ?? [])]
  const names = all.map((c) => String(c.name))
  const duplicate = (list: string[]): string[] => list.filter((n, i) => list.indexOf(n) !== i)
  for (const n of duplicate(names)) problems.push(`container name "${n}" is used twice`)
  const volumes = (spec.volumes ?? []).map((v) => String(v.name))
  for (const n of duplicate(volumes)) problems.push(`volume name "${n}" is used twice`)
  for (const c of all) {
    for (const m of (c.volumeMounts ?? []) as JsonObject[]) if (!volumes.includes(String(m.name))) problems.push(`container ${String(c.name)} mounts "${String(m.name)}", which is no volume of the pod`)
    const paths = ((c.volumeMounts ?? []) as JsonObject[]).map((m) => String(m.mountPath))
    for (const p of duplicate(paths)) problems.push(`container ${String(c.name)} mounts two volumes at ${p}`)
  }
  for (const c of spec.containers ?? []) if (c.restartPolicy !== undefined) problems.push(`container ${String(c.name)} has a restartPolicy (only init containers may)`)
  for (const c of spec.initContainers ?? []) if (c.restartPolicy !== undefined && c.restartPolicy !== 'Always') problems.push(`init container ${String(c.name)} has restartPolicy ${String(c.restartPolicy)} (only Always is allowed)`)
  return problems
}

// Idempotent, deterministic, a valid Pod: for every pod the case injects.
function builtInChecks(e: Evaluation, settings: ReturnType<typeof loadSettings>, defaults: Record<string, string>): string[] {
  if (e.result.decision !== 'inject') return []
  const failures: string[] = []
  const input = { pod: e.location.pod, namespace: e.namespace, settings, workloadKind: e.location.kind, annotationDefaults: defaults }
  const again = injectPod(input)
  if (JSON.stringify(again.patch) !== JSON.stringify(e.result.patch)) failures.push(`${e.name}: not deterministic: two runs gave different patches`)
  const second = injectPod({ ...input, pod: e.result.pod })
  if (second.patch.length > 0) failures.push(`${e.name}: not idempotent: injecting the output again gives ${second.patch.length} more operation(s), first ${second.patch[0]!.op} ${second.patch[0]!.path}`)
  for (const p of podProblems(e.result.pod)) failures.push(`${e.name}: not a valid Pod: ${p}`)
  return failures
}

function runCase(suiteFile: string, suite: Suite, c: Case): string[] {
  const base = dirname(suiteFile)
  const settings = settingsFrom({ ...(suite.settings ?? {}), ...(c.settings ?? {}) })
  const policyFile = c.policy === null ? undefined : (c.policy ?? suite.policy)
  const policy: Policy | undefined = policyFile ? loadPolicyFile(resolve(base, policyFile)) : undefined
  const namespace = c.namespace ?? suite.namespace ?? 'default'
  const namespaceLabels = { ...(suite.namespaceLabels ?? {}), ...(c.namespaceLabels ?? {}) }
  const options = { settings, namespace, policy, namespaceLabels }
  const documents = readManifests(c.manifests.map((m) => resolve(base, m)))
  const evaluations: Evaluation[] = []
  for (const doc of documents) {
    const object = doc.object as { kind?: unknown; items?: unknown[] }
    for (const item of object?.kind === 'List' && Array.isArray(object.items) ? object.items : [object]) {
      const e = evaluate(item, options)
      if (e) evaluations.push(e)
    }
  }
  const failures: string[] = []
  const expect = c.expect
  if (evaluations.length === 0) failures.push('the manifests hold no pod or pod template')
  for (const e of evaluations) {
    const defaults = policy?.annotationDefaults({ namespace: e.namespace, namespaceLabels: { 'kubernetes.io/metadata.name': e.namespace, ...namespaceLabels } }) ?? {}
    failures.push(...builtInChecks(e, settings, defaults))
    if (expect.injected !== undefined && (e.decision === 'inject') !== expect.injected) {
      failures.push(`${e.name}: expected ${expect.injected ? 'injected' : 'not injected'}, got ${e.decision}: ${e.reason}`)
    }
  }
  if (expect.denied !== undefined) {
    const re = new RegExp(expect.denied)
    if (!evaluations.some((e) => e.decision === 'deny' && re.test(e.reason))) {
      failures.push(`expected a denial matching /${expect.denied}/, got: ${evaluations.map((e) => `${e.decision}: ${e.reason}`).join(' | ')}`)
    }
  }
  const warnings = evaluations.flatMap((e) => e.warnings)
  for (const w of expect.warnings ?? []) if (!warnings.some((x) => new RegExp(w).test(x))) failures.push(`expected a warning matching /${w}/, got: ${warnings.join(' | ') || 'none'}`)
  if (expect.noWarnings && warnings.length > 0) failures.push(`expected no warnings, got: ${warnings.join(' | ')}`)

  // Output documents as `inject` would write them.
  const outDocs = readManifests(c.manifests.map((m) => resolve(base, m)))
  const outcome = injectDocuments(outDocs, options)
  for (const a of expect.assertions ?? []) {
    const doc = outDocs[(a.document ?? 1) - 1]
    const where = `document ${a.document ?? 1} ${a.pointer}`
    if (!doc) {
      failures.push(`${where}: no such document`)
      continue
    }
    const got = pointerGet(doc.object, a.pointer)
    if (a.exists !== undefined && got.found !== a.exists) failures.push(`${where}: expected ${a.exists ? 'to exist' : 'to be absent'}`)
    if (a.equals !== undefined && JSON.stringify(got.value) !== JSON.stringify(a.equals)) failures.push(`${where}: expected ${JSON.stringify(a.equals)}, got ${got.found ? JSON.stringify(got.value) : 'nothing'}`)
    if (a.matches !== undefined && !(typeof got.value === 'string' && new RegExp(a.matches).test(got.value))) failures.push(`${where}: expected to match /${a.matches}/, got ${JSON.stringify(got.value)}`)
  }
  if (expect.golden) {
    const goldenFile = resolve(base, expect.golden)
    const actual = formatYaml(outcome)
    if (process.env.REFRESH_GOLDEN === 'true') writeFileSync(goldenFile, actual)
    let expected = ''
    try {
      expected = readFileSync(goldenFile, 'utf8')
    } catch {
      failures.push(`golden ${expect.golden} is missing (REFRESH_GOLDEN=true writes it)`)
    }
    if (expected && expected !== actual) failures.push(`output differs from golden ${expect.golden} (REFRESH_GOLDEN=true rewrites it; read the diff)`)
  }
  return failures
}

export function runSuites(target: string): CaseResult[] {
  const files = findSuites(target)
  if (files.length === 0) throw new SuiteError(`${target}: no *injector-test.yaml suite found`)
  const suites = files.map((f) => ({ file: f, suite: loadSuite(f) }))
  const results: CaseResult[] = []
  for (const { file, suite } of suites) {
    const name = suite.metadata?.name ?? relative(process.cwd(), file)
    for (const c of suite.cases) {
      const started = performance.now()
      let failures: string[]
      try {
        failures = runCase(file, suite, c)
      } catch (error) {
        if (error instanceof SuiteError) throw new SuiteError(`${file}: case "${c.name}": ${error.message}`)
        throw new SuiteError(`${file}: case "${c.name}": ${(error as Error).message}`)
      }
      results.push({ suite: name, name: c.name, failures, durationMs: performance.now() - started })
    }
  }
  return results
}

const xml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')

export function formatText(results: CaseResult[]): string {
  const lines = results.map((r) => (r.failures.length === 0 ? `PASS  ${r.suite} / ${r.name}` : `FAIL  ${r.suite} / ${r.name}\n${r.failures.map((f) => `      - ${f}`).join('\n')}`))
  const failed = results.filter((r) => r.failures.length > 0).length
  return `${lines.join('\n')}\n\n${results.length - failed} passed, ${failed} failed\n`
}

export function formatJunit(results: CaseResult[]): string {
  const bySuite = new Map<string, CaseResult[]>()
  for (const r of results) bySuite.set(r.suite, [...(bySuite.get(r.suite) ?? []), r])
  const failed = results.filter((r) => r.failures.length > 0).length
  const suites = [...bySuite].map(([suite, cases]) => {
    const testcases = cases.map((c) => {
      const time = (c.durationMs / 1000).toFixed(3)
      if (c.failures.length === 0) return `    <testcase classname="${xml(suite)}" name="${xml(c.name)}" time="${time}"/>`
      return `    <testcase classname="${xml(suite)}" name="${xml(c.name)}" time="${time}">\n      <failure message="${xml(c.failures[0]!)}">${xml(c.failures.join('\n'))}</failure>\n    </testcase>`
    })
    const f = cases.filter((c) => c.failures.length > 0).length
    return `  <testsuite name="${xml(suite)}" tests="${cases.length}" failures="${f}">\n${testcases.join('\n')}\n  </testsuite>`
  })
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="vault-injector" tests="${results.length}" failures="${failed}">\n${suites.join('\n')}\n</testsuites>\n`
}

export function formatTap(results: CaseResult[]): string {
  const lines = ['TAP version 14', `1..${results.length}`]
  results.forEach((r, i) => {
    lines.push(`${r.failures.length === 0 ? 'ok' : 'not ok'} ${i + 1} - ${r.suite} / ${r.name.replace(/#/g, '\\#')}`)
    if (r.failures.length > 0) lines.push('  ---', '  failures:', ...r.failures.map((f) => `    - ${JSON.stringify(f)}`), '  ...')
  })
  return lines.join('\n') + '\n'
}
