import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultSettings } from '../../src/settings.ts'
import { judge as judgement } from '../../src/policy/judge.ts'
import { loadPolicyFile, parsePolicy, PolicyWatcher } from '../../src/policy/load.ts'
import { selectorMatches } from '../../src/policy/policy.ts'
import { annotatedPod } from '../helpers/pods.ts'

const settings = defaultSettings()
const quiet = { info() {}, warn() {}, error() {} }
const policyText = (rules: string): string => `apiVersion: vault-injector.dev/v1alpha1\nkind: InjectorPolicy\nmetadata: {name: test}\nspec:\n  rules:\n${rules}`

function judge(policyYaml: string, annotations: Record<string, string>, namespace = 'team-a', labels: Record<string, string> = {}) {
  const policy = parsePolicy(policyYaml, 'test')
  const j = judgement({ pod: annotatedPod(annotations), namespace, namespaceLabels: labels, settings, policy })
  return { result: j.result, verdict: j.verdict ?? { warnings: [], findings: [] } }
}

t.test('allowed roles and secret paths, by namespace glob', async (t) => {
  const policy = policyText(`    - name: team-a\n      namespaces: {names: ["team-*"]}\n      allow:\n        roles: ["app", "team-a-*"]\n        secretPaths: ["secret/data/team-a/**", "database/creds/team-a-*"]\n`)
  t.same(judge(policy, { 'vault.hashicorp.com/agent-inject-secret-db': 'database/creds/team-a-ro' }).verdict.findings, [])
  const bad = judge(policy, { 'vault.hashicorp.com/role': 'admin', 'vault.hashicorp.com/agent-inject-secret-x': 'secret/data/team-b/x', 'vault.hashicorp.com/agent-inject-template-y': '{{ with secret "secret/data/root" }}{{ end }}' })
  t.equal(bad.verdict.findings.length, 3)
  t.match(bad.verdict.denied, /policy rule "team-a": Vault role "admin" is not allowed in namespace team-a \(allowed: app, team-a-\*\)/)
  t.match(bad.verdict.denied, /secret path "secret\/data\/team-b\/x" \(rendered to \/vault\/secrets\/x\) is not allowed/)
  t.match(bad.verdict.denied, /secret path "secret\/data\/root" \(rendered to \/vault\/secrets\/y\)/, 'paths read by templates are checked')
  t.same(judge(policy, { 'vault.hashicorp.com/role': 'admin' }, 'other').verdict.findings, [], 'rule does not apply elsewhere')
})

t.test('modes: enforce denies, warn warns, audit only records', async (t) => {
  for (const [mode, denied, warnings] of [['enforce', true, 0], ['warn', false, 1], ['audit', false, 0]] as const) {
    const { verdict } = judge(policyText(`    - name: r\n      mode: ${mode}\n      require: {noTlsSkipVerify: true}\n`), { 'vault.hashicorp.com/tls-skip-verify': 'true' })
    t.equal(verdict.denied !== undefined, denied, mode)
    t.equal(verdict.warnings.length, warnings, mode)
    t.match(verdict.findings, [{ rule: 'r', mode, message: /tls-skip-verify must not be true/ }], mode)
  }
})

t.test('requirements: limits, Jobs', async (t) => {
  const limits = policyText(`    - name: limits\n      require: {resourceLimits: true}\n`)
  t.equal(judge(limits, {}).verdict.denied, undefined, 'defaults set limits')
  t.match(judge(limits, { 'vault.hashicorp.com/agent-limits-mem': '' }).verdict.denied, /limits must be set/)
  const jobs = parsePolicy(policyText(`    - name: jobs\n      require: {jobsInitOnlyOrNative: true}\n`), 'x')
  const pod = annotatedPod({})
  ;(pod.metadata as any).ownerReferences = [{ kind: 'Job', name: 'j', apiVersion: 'batch/v1', uid: 'u' }]
  t.match(judgement({ pod, namespace: 'team-a', settings, policy: jobs }).verdict?.denied, /Job pods must use/)
  ;(pod.metadata as any).annotations['vault.hashicorp.com/agent-pre-populate-only'] = 'true'
  t.equal(judgement({ pod, namespace: 'team-a', settings, policy: jobs }).verdict?.denied, undefined)
})

t.test('namespace defaults: pod annotations win, later rules win', async (t) => {
  const policy = policyText(`    - name: a\n      defaults: {vault.hashicorp.com/auth-path: auth/a, vault.hashicorp.com/ca-cert: /vault/tls/ca.crt}\n    - name: b\n      namespaces: {selector: {matchLabels: {region: east}}}\n      defaults: {vault.hashicorp.com/auth-path: auth/east}\n`)
  const config = (r: ReturnType<typeof judge>) => JSON.parse(Buffer.from((r.result.pod as any).spec.containers[1].env.find((e: any) => e.name === 'VAULT_CONFIG').value, 'base64').toString())
  t.equal(config(judge(policy, {})).auto_auth.method.mount_path, 'auth/a')
  t.equal(config(judge(policy, {}, 'team-a', { region: 'east' })).auto_auth.method.mount_path, 'auth/east')
  t.equal(config(judge(policy, { 'vault.hashicorp.com/auth-path': 'auth/pod' }, 'team-a', { region: 'east' })).auto_auth.method.mount_path, 'auth/pod')
  t.equal(config(judge(policy, {})).vault.ca_cert, '/vault/tls/ca.crt')
})

t.test('label selectors', async (t) => {
  const labels = { env: 'prod', team: 'a' }
  t.ok(selectorMatches({ matchLabels: { env: 'prod' } }, labels))
  t.notOk(selectorMatches({ matchLabels: { env: 'dev' } }, labels))
  t.ok(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'In', values: ['a', 'b'] }, { key: 'pci', operator: 'DoesNotExist' }] }, labels))
  t.notOk(selectorMatches({ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, labels))
  t.notOk(selectorMatches({ matchExpressions: [{ key: 'pci', operator: 'Exists' }] }, labels))
})

t.test('invalid policies are refused with the field named', async (t) => {
  t.throws(() => parsePolicy('apiVersion: v1\nkind: InjectorPolicy\nspec: {rules: []}', 'p.yaml'), /p.yaml: not a valid InjectorPolicy: \/apiVersion must be equal to constant/)
  t.throws(() => parsePolicy(policyText('    - name: r\n      mode: block\n'), 'p.yaml'), /\/spec\/rules\/0\/mode must be equal to one of the allowed values \(enforce, warn, audit\)/)
  t.throws(() => parsePolicy(policyText('    - name: r\n      allow: {role: [x]}\n'), 'p.yaml'), /must NOT have additional properties \(role\)/)
  t.throws(() => parsePolicy(policyText('    - name: r\n    - name: r\n'), 'p.yaml'), /rule name "r" is used twice/)
  t.throws(() => parsePolicy(': : :', 'p.yaml'), /not valid YAML/)
  t.throws(() => loadPolicyFile('/no/such/policy.yaml'), /cannot read policy \/no\/such\/policy.yaml: ENOENT/)
})

t.test('the watcher reloads a changed file and keeps the last good policy when it breaks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'policy-'))
  const file = join(dir, 'policy.yaml')
  writeFileSync(file, policyText('    - name: one\n'))
  const errors: string[] = []
  const watcher = new PolicyWatcher(file, { info() {}, warn() {}, error: (_o, msg) => errors.push(msg) }, 10_000)
  t.teardown(() => watcher.close())
  const first = watcher.current()
  writeFileSync(file, policyText('    - name: one\n    - name: two\n      require: {noTlsSkipVerify: true}\n'))
  watcher.poll()
  t.not(watcher.current(), first, 'reloaded')
  const good = watcher.current()
  writeFileSync(file, 'kind: Broken')
  watcher.poll()
  t.equal(watcher.current(), good, 'last good policy kept')
  t.match(errors, ['policy not reloaded; the last good policy stays in force'])
  void quiet
})

t.test('audit findings are bounded and never carry template bodies', async (t) => {
  const { admit } = await import('../../src/webhook/admission.ts')
  const policy = parsePolicy(policyText(`    - name: narrow\n      allow: {secretPaths: ["secret/data/team-a/*"], roles: [app]}\n`), 'p.yaml')
  const annotations: Record<string, string> = { 'vault.hashicorp.com/role': 'r'.repeat(5000) }
  for (let i = 0; i < 40; i++) annotations[`vault.hashicorp.com/agent-inject-template-s${i}`] = `TOPSECRET-BODY {{ with secret "secret/data/team-b/${'x'.repeat(400)}${i}" }}{{ .Data }}{{ end }}`
  annotations['vault.hashicorp.com/agent-inject-template-dyn'] = 'TOPSECRET-BODY {{ with secret (printf "%s" "TOPSECRET-PATH") }}{{ end }}'
  const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'team-a', operation: 'CREATE', object: annotatedPod(annotations) } }
  const audit = admit(review, { settings, policy }).audit!
  t.equal(audit.decision, 'deny')
  t.ok(audit.policyFindings!.length <= 21, `${audit.policyFindings!.length} findings`)
  t.match(audit.policyFindings!.at(-1)!.message, /more policy finding\(s\) not shown/)
  for (const f of audit.policyFindings!) {
    t.ok(f.message.length <= 600, `finding of ${f.message.length} characters`)
    t.notMatch(f.message, /TOPSECRET/, 'no template body')
  }
  t.ok(audit.role!.length <= 121, 'the role is cut')
  t.ok(audit.secretPaths!.length <= 21 && audit.secretPaths!.every((p) => p.length <= 121), 'secret paths are bounded')
  t.notMatch(JSON.stringify(audit), /TOPSECRET-BODY/)
})

t.test('Vault addresses are compared as URLs, part by part', async (t) => {
  const { parseAddress, compileAddressPattern } = await import('../../src/policy/address.ts')
  const matches = (pattern: string, address: string): boolean | string => {
    const parsed = parseAddress(address)
    if (typeof parsed === 'string') return parsed
    return (compileAddressPattern(pattern) as (a: typeof parsed) => boolean)(parsed)
  }
  t.equal(matches('https://vault-dr.corp.example.com:*', 'https://vault-dr.corp.example.com:8443'), true)
  t.match(matches('https://vault-dr.corp.example.com:*', 'https://vault-dr.corp.example.com:8443@attacker.example'), /userinfo/)
  t.match(matches('https://*.vault.corp.example.com:8200', 'https://attacker.example?.vault.corp.example.com:8200'), /query/)
  t.equal(matches('https://*.vault.corp.example.com:8200', 'https://a.vault.corp.example.com:8200'), true)
  t.equal(matches('https://*.vault.corp.example.com:8200', 'https://a.b.vault.corp.example.com:8200'), false, '* is one DNS label')
  t.equal(matches('https://**.vault.corp.example.com:8200', 'https://a.b.vault.corp.example.com:8200'), true)
  t.equal(matches('https://vault.corp.example.com', 'https://vault.corp.example.com:443'), true, 'no port: the scheme default')
  t.equal(matches('https://vault.corp.example.com', 'https://vault.corp.example.com:8443'), false)
  t.equal(matches('https://vault.corp.example.com:8200', 'http://vault.corp.example.com:8200'), false, 'the scheme counts')
  t.equal(matches('https://vault.corp.example.com:8200', 'https://VAULT.corp.example.com:8200'), true, 'hosts compare without case')
  t.match(matches('https://127.0.0.1:8200', 'https://2130706433:8200'), /parses differently/, 'Go would not read 2130706433 as 127.0.0.1')
  t.match(matches('https://vault.corp.example.com:8200', 'https://vault.corp.example.com:8200/v1'), /path/)
  t.match(matches('https://vault.corp.example.com:8200', 'https://vault.corp.example.com:8200#x'), /fragment/)
  t.match(matches('https://vault.corp.example.com:8200', 'https://vault.corp.example.com\\@attacker:8200'), /backslash/)
  t.type(compileAddressPattern('vault.corp.example.com:8200'), 'string', 'a pattern without a scheme does not load')
})

t.test('a namespace the webhook has not seen: rules that select by label restrict it (fail closed) but give it no defaults', async (t) => {
  const policy = parsePolicy(
    policyText(
      `    - name: shop\n      namespaces: {selector: {matchLabels: {team: shop}}}\n      allow: {roles: ["shop-*"]}\n` +
        `    - name: payments\n      namespaces: {selector: {matchLabels: {team: payments}}}\n      defaults: {vault.hashicorp.com/auth-path: auth/payments}\n` +
        `    - name: not-prod\n      namespaces: {names: ["dev-*"], selector: {matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}}\n      allow: {roles: ["nobody"]}\n`,
    ),
    'test',
  )
  const run = (annotations: Record<string, string>, namespace: string, labels: Record<string, string> | undefined) =>
    judgement({ pod: annotatedPod(annotations), namespace, namespaceLabels: labels ?? {}, labelsUnknown: labels === undefined, settings, policy })

  const known = run({ 'vault.hashicorp.com/role': 'payments' }, 'team-x', { team: 'other' })
  t.equal(known.decision, 'inject', 'labels known and not selected: no rule applies')
  const unknown = run({ 'vault.hashicorp.com/role': 'payments' }, 'team-x', undefined)
  t.equal(unknown.decision, 'deny', 'labels unknown: the shop rule applies as if it selected the namespace')
  t.match(unknown.reason, /policy rule "shop": Vault role "payments" is not allowed .*namespace "team-x" is not known to vault-injector yet/)
  t.notMatch(unknown.reason, /not-prod/, 'a rule whose names exclude the namespace still does not apply')

  // The payments rule's default auth mount must not reach a namespace only because its labels are unknown.
  const unseen = run({ 'vault.hashicorp.com/role': 'shop-web' }, 'team-x', undefined)
  t.equal(unseen.decision, 'inject', 'a pod that satisfies every restriction is admitted while the labels are unknown')
  t.same(unseen.facts?.authPaths, ['auth/kubernetes'], 'no default from a rule that only applies because the labels are unknown')
  const selected = run({}, 'team-x', { team: 'payments' })
  t.equal(selected.decision, 'inject', 'known and selected')
  t.same(selected.facts?.authPaths, ['auth/payments'], 'known and selected: the default applies')

  const dev = run({ 'vault.hashicorp.com/role': 'app' }, 'dev-1', undefined)
  t.match(dev.reason, /policy rule "not-prod"/, 'NotIn: unknown labels apply the rule too (the stricter reading)')
})
