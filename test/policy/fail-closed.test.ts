// A policy that does not load stops every command with exit 2, naming the
// file and the field; the webhook, at reload, keeps its last good policy and
// says so in the log and on /metrics.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { parsePolicy, PolicyWatcher } from '../../src/policy/load.ts'
import { registerPolicyMetrics } from '../../src/policy/metrics.ts'

const root = new URL('../../', import.meta.url).pathname
const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [join(root, 'bin/vault-injector.js'), ...args], { encoding: 'utf8', cwd: root, timeout: 20_000, env: { ...process.env, ...env } })
const head = 'apiVersion: vault-injector.dev/v1alpha1\nkind: InjectorPolicy\nspec:\n  rules:\n'
const bad: [string, string, RegExp][] = [
  ['address pattern', `${head}    - name: r\n      allow: {vaultAddresses: ["vault.corp:8200"]}\n`, /\/spec\/rules\/0\/allow\/vaultAddresses\/0/],
  ['unknown field', `${head}    - name: r\n      allow: {role: [x]}\n`, /\/spec\/rules\/0\/allow must NOT have additional properties \(role\)/],
  ['unknown escape hatch', `${head}    - name: r\n      allow: {escapeHatches: [everything]}\n`, /\/spec\/rules\/0\/allow\/escapeHatches\/0 must be equal to one of the allowed values/],
  ['bad default', `${head}    - name: r\n      defaults: {vault.hashicorp.com/agent-limits-cpu: lots}\n`, /\/spec\/rules\/0\/defaults: vault.hashicorp.com\/agent-limits-cpu: "lots"/],
  ['unknown default', `${head}    - name: r\n      defaults: {vault.hashicorp.com/agent-limits-cpus: "1"}\n`, /\/spec\/rules\/0\/defaults: vault.hashicorp.com\/agent-limits-cpus: unknown annotation/],
]

t.test('serve, inject, explain, review and test exit 2 on a bad policy, naming the file and the field', async (t) => {
  const dir = t.testdir({ 'pod.yaml': 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: a}]}\n' })
  // Every command on two kinds of mistake (schema, and what only loading finds); the rest in process below.
  for (const [what, text, field] of [bad[1]!, bad[3]!]) {
    const file = join(dir, 'policy.yaml')
    writeFileSync(file, text)
    writeFileSync(join(dir, 'injector-test.yaml'), 'apiVersion: vault-injector.dev/v1alpha1\nkind: InjectorTest\npolicy: policy.yaml\ncases: [{name: c, manifests: [pod.yaml], expect: {injected: false}}]\n')
    const runs = {
      serve: run(['serve', '--listen', '127.0.0.1:0', '--certs-dir', dir], { AGENT_INJECT_POLICY_FILE: file }),
      inject: run(['inject', '-f', join(dir, 'pod.yaml'), '--policy', file]),
      explain: run(['explain', '-f', join(dir, 'pod.yaml'), '--policy', file]),
      review: run(['review', '-f', join(root, 'examples/admission-review.json'), '--policy', file]),
      test: run(['test', dir]),
    }
    for (const [command, r] of Object.entries(runs)) {
      t.equal(r.status, 2, `${what}: ${command} exits 2 (${r.stderr.trim().slice(0, 200)})`)
      t.match(r.stderr, file, `${what}: ${command} names the file`)
      t.match(r.stderr, field, `${what}: ${command} names the field`)
    }
  }
})

t.test('every kind of mistake names its field', async (t) => {
  for (const [what, text, field] of bad) t.throws(() => parsePolicy(text, 'p.yaml'), field, what)
})

t.test('a reload that fails keeps the last good policy, logs it and shows it on /metrics', async (t) => {
  const dir = t.testdir({ 'policy.yaml': `${head}    - name: good\n      allow: {roles: [app]}\n` })
  const file = join(dir, 'policy.yaml')
  const errors: string[] = []
  const watcher = new PolicyWatcher(file, { info() {}, warn() {}, error: (_o: unknown, msg: string) => errors.push(msg) } as never, 60_000)
  t.teardown(() => watcher.close())
  const registry = new Registry()
  registerPolicyMetrics(registry, watcher)
  const good = watcher.current()
  t.match(await registry.metrics(), /vault_injector_policy_file_in_force 1\n[\s\S]*|vault_injector_policy_reload_failures_total 0/)
  writeFileSync(file, bad[0]![1])
  watcher.poll()
  t.equal(watcher.current(), good, 'the last good policy stays in force')
  t.same(errors, ['policy not reloaded; the last good policy stays in force'])
  const metrics = await registry.metrics()
  t.match(metrics, /vault_injector_policy_reload_failures_total 1/)
  t.match(metrics, /vault_injector_policy_file_in_force 0/)
  writeFileSync(file, `${head}    - name: fixed\n`)
  watcher.poll()
  t.not(watcher.current(), good)
  t.match(await registry.metrics(), /vault_injector_policy_file_in_force 1/)
})
