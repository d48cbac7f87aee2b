// test, explain and review as a user runs them.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { XMLParser } from 'fast-xml-parser'

const root = new URL('../../', import.meta.url).pathname
function run(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin/vault-injector.js'), ...args], { input, encoding: 'utf8', cwd: root })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const suite = (cases: string, extra = ''): string => `apiVersion: vault-injector.dev/v1alpha1\nkind: InjectorTest\n${extra}cases:\n${cases}`
const pod = `apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations: {vault.hashicorp.com/agent-inject: "true", vault.hashicorp.com/role: web, vault.hashicorp.com/agent-inject-secret-db: secret/db}\nspec:\n  containers: [{name: web, image: nginx}]\n`

t.test('vault-injector test: the shipped example suite passes', async (t) => {
  const r = run(['test', 'examples/'])
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.match(r.stdout, /8 passed, 0 failed/)
})

t.test('vault-injector test: a failing suite exits 1 and says why; junit and tap are well formed', async (t) => {
  const dir = t.testdir({
    'pod.yaml': pod,
    'injector-test.yaml': suite(`  - name: wrong expectation\n    manifests: [pod.yaml]\n    expect:\n      injected: false\n      assertions:\n        - {pointer: /spec/containers/1/name, equals: sidecar}\n  - name: right expectation\n    manifests: [pod.yaml]\n    expect: {injected: true}\n`),
  })
  const text = run(['test', dir])
  t.equal(text.status, 1)
  t.match(text.stdout, /FAIL  .* \/ wrong expectation\n      - Pod web: expected not injected, got inject/)
  t.match(text.stdout, /document 1 \/spec\/containers\/1\/name: expected "sidecar", got "vault-agent"/)
  t.match(text.stdout, /PASS  .* \/ right expectation/)
  t.match(text.stdout, /1 passed, 1 failed/)

  const junit = run(['test', dir, '-o', 'junit'])
  t.equal(junit.status, 1)
  const parsed = new XMLParser({ ignoreAttributes: false }).parse(junit.stdout)
  t.equal(parsed.testsuites['@_tests'], '2')
  t.equal(parsed.testsuites['@_failures'], '1')
  const cases = parsed.testsuites.testsuite.testcase
  t.ok(cases[0].failure, 'the failing case has a failure element')

  const tap = run(['test', dir, '-o', 'tap'])
  t.match(tap.stdout, /^TAP version 14\n1\.\.2\nnot ok 1 - .*wrong expectation\n/)
  t.match(tap.stdout, /\nok 2 - .*right expectation/)
})

t.test('vault-injector test: built-in checks catch an invalid pod', async (t) => {
  const dir = t.testdir({
    'pod.yaml': pod.replace('containers: [{name: web, image: nginx}]', 'containers: [{name: web, image: nginx, restartPolicy: Always}]'),
    'injector-test.yaml': suite(`  - name: restartPolicy on a regular container\n    manifests: [pod.yaml]\n    expect: {injected: true}\n`),
  })
  const r = run(['test', dir])
  t.equal(r.status, 1)
  t.match(r.stdout, /not a valid Pod: container web has a restartPolicy/)
})

t.test('vault-injector test: malformed suites exit 2', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ 'injector-test.yaml': 'kind: InjectorTest\ncases: []' }, /not a valid InjectorTest suite/],
    [{ 'injector-test.yaml': suite('  - name: x\n    manifests: [missing.yaml]\n    expect: {}\n') }, /case "x": cannot read .*missing.yaml/],
    [{ 'injector-test.yaml': suite('  - name: x\n    manifests: [p.yaml]\n    settings: {NOPE: 1}\n    expect: {}\n'), 'p.yaml': pod }, /unknown injector setting "NOPE"/],
    [{ 'readme.md': 'no suites' }, /no \*injector-test.yaml suite found/],
  ]
  for (const [files, message] of cases) {
    const r = run(['test', t.testdir(files)])
    t.equal(r.status, 2, String(message))
    t.match(r.stderr, message)
  }
})

t.test('vault-injector explain', async (t) => {
  const r = run(['explain', '-f', 'examples/policy/', '--policy', 'examples/policy/policy.yaml'])
  t.equal(r.status, 1, 'a denial among them: exit 1, as inject')
  t.match(r.stdout, /Deployment shop\/storefront \(namespace shop\): INJECTED\n  agents: vault-agent-init, vault-agent \(mode init\+sidecar\)\n  auth: kubernetes at auth\/k8s-eu-west-1, role storefront; Vault https:\/\/vault.corp.example.com:8200/)
  t.match(r.stdout, /\/vault\/secrets\/session ← secret\/data\/shop\/storefront\/session \(default map template\)/)
  t.match(r.stdout, /Pod shop\/curious \(namespace shop\): DENIED\n  why: policy rule "shop-team": Vault role "payments" is not allowed/)
  const plain = run(['explain', '-f', '-'], 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n')
  t.match(plain.stdout, /Pod p \(namespace default\): not injected\n  why: not annotated: vault.hashicorp.com\/agent-inject is not set/)
  t.equal(plain.status, 0, 'nothing denied: exit 0')
})

t.test('vault-injector explain -o json: the same facts, one object per pod', async (t) => {
  const r = run(['explain', '-f', 'examples/policy/', '--policy', 'examples/policy/policy.yaml', '-o', 'json'])
  t.equal(r.status, 1)
  const all = JSON.parse(r.stdout) as { name: string; decision: string; reason: string; auth?: { role: string }; secrets?: { file: string; path: string }[] }[]
  const storefront = all.find((e) => e.name === 'Deployment shop/storefront' && e.decision === 'inject')!
  t.equal(storefront.decision, 'inject')
  t.same(storefront.auth, { type: 'kubernetes', path: 'auth/k8s-eu-west-1', role: 'storefront' })
  t.ok(storefront.secrets!.some((s) => s.file === '/vault/secrets/session' && s.path === 'secret/data/shop/storefront/session'))
  const curious = all.find((e) => e.name === 'Pod shop/curious')!
  t.equal(curious.decision, 'deny')
  t.match(curious.reason, /policy rule "shop-team": Vault role "payments" is not allowed/)
})

const typo = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations: {vault.hashicorp.com/agent-injet: "true", vault.hashicorp.com/role: web}\nspec:\n  containers: [{name: web, image: nginx}]\n'

t.test('a typo in the trigger annotation: a warning with the suggestion; --strict makes it a denial (exit 1)', async (t) => {
  const said = 'vault.hashicorp.com/agent-injet: unknown annotation, ignored; did you mean vault.hashicorp.com/agent-inject?'
  const explain = run(['explain', '-f', '-'], typo)
  t.equal(explain.status, 0)
  t.match(explain.stdout, `  warning: ${said}`)
  const inject = run(['inject', '-f', '-'], typo)
  t.equal(inject.status, 0)
  t.match(inject.stderr, `document 1 (Pod web): warning: ${said}`)
  const strictInject = run(['inject', '--strict', '-f', '-'], typo)
  t.equal(strictInject.status, 1)
  t.match(strictInject.stderr, 'document 1 (Pod web): denied: --strict: vault.hashicorp.com/agent-injet is not a known annotation; did you mean vault.hashicorp.com/agent-inject?')
  t.notMatch(strictInject.stdout, /vault-agent/, 'the denied document is written without an agent')
  const strictExplain = run(['explain', '--strict', '-f', '-', '-o', 'json'], typo)
  t.equal(strictExplain.status, 1)
  t.equal((JSON.parse(strictExplain.stdout) as { decision: string }[])[0]!.decision, 'deny')
  const clean = run(['inject', '--strict', '-f', '-'], typo.replace('agent-injet', 'agent-inject'))
  t.equal(clean.status, 0, 'no unknown annotation: --strict changes nothing')
})

t.test('vault-injector review answers exactly as the server', async (t) => {
  const r = run(['review', '-f', 'examples/admission-review.json'])
  t.equal(r.status, 0, r.stderr)
  const answer = JSON.parse(r.stdout)
  t.equal(answer.response.uid, '0df28fbd-5f5f-11e8-bc74-36e6bb280816')
  t.equal(answer.response.patchType, 'JSONPatch')
  const { admit } = await import('../../src/webhook/admission.ts')
  const { defaultSettings } = await import('../../src/settings.ts')
  t.same(answer, admit(JSON.parse(readFileSync(join(root, 'examples/admission-review.json'), 'utf8')), { settings: defaultSettings() }).body)
  const denied = run(['review', '-f', '-', '--policy', 'examples/policy/policy.yaml'], readFileSync(join(root, 'examples/admission-review.json'), 'utf8'))
  t.match(JSON.parse(denied.stdout).response, { allowed: false, status: { code: 403, message: /policy rule "shop-team": Vault role "web" is not allowed in namespace shop/ } })
  const bad = run(['review', '-f', '-'], '{"kind":"Pod"}')
  t.equal(bad.status, 2)
})

t.test('agent-inject, vault-k8s\'s command name, runs serve; the literal 2>&1 vault-helm passes after it is dropped', async (t) => {
  const help = run(['agent-inject', '2>&1', '--help'])
  t.equal(help.status, 0, help.stderr)
  t.match(help.stdout, /Usage: vault-injector serve\|agent-inject \[options\]/)
  // A bad setting is reported by serve's own check: the stray argument got past the parser.
  const r = spawnSync(process.execPath, [join(root, 'bin/vault-injector.js'), 'agent-inject', '2>&1'], { encoding: 'utf8', cwd: root, env: { ...process.env, AGENT_INJECT_TLS_MIN_VERSION: 'tls11' } })
  t.equal(r.status, 2)
  t.match(r.stderr, /AGENT_INJECT_TLS_MIN_VERSION: "tls11" is not accepted/)
  t.notMatch(r.stderr, /too many arguments/)
  const serve = run(['serve', '2>&1'])
  t.equal(serve.status, 2, 'after serve it is still an error')
  t.match(serve.stderr, /too many arguments/)
})
