// Annotations written by an attacker: JSON patches that multiply a subtree,
// JSON nested deep enough to exhaust the stack, shell syntax in values that
// reach the preStop command. Each gets a denial that names the annotation (or
// is passed on harmlessly), never an exception and never an unbounded answer.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { injectPod } from '../../src/engine/index.ts'
import { defaultSettings } from '../../src/settings.ts'
import { MAX_PATCHED_CONTAINER_BYTES, shellWord } from '../../src/engine/containers.ts'
import type { EngineResult } from '../../src/engine/types.ts'
import { annotatedPod, containerNamed } from '../helpers/pods.ts'

type Obj = Record<string, any>
const settings = defaultSettings()
const inject = (annotations: Record<string, string>): EngineResult & { pod: Obj } =>
  injectPod({ pod: annotatedPod(annotations), namespace: 'team-a', settings }) as EngineResult & { pod: Obj }

for (const annotation of ['agent-json-patch', 'agent-init-json-patch']) {
  t.test(`${annotation}: copy operations that double a subtree are stopped by the result size`, async (t) => {
    // About 3 KiB of annotation each; unbounded, the answer runs to gigabytes.
    const intoObject = [{ op: 'add', path: '/d', value: { pad: 'x'.repeat(500) } }, ...Array.from({ length: 40 }, (_, i) => ({ op: 'copy', from: '/d', path: `/d/c${i}` }))]
    const intoArray = [{ op: 'add', path: '/d', value: ['x'.repeat(500)] }, ...Array.from({ length: 40 }, () => ({ op: 'copy', from: '/d', path: '/d/-' }))]
    for (const patch of [intoObject, intoArray]) {
      const r = inject({ [`vault.hashicorp.com/${annotation}`]: JSON.stringify(patch) })
      t.equal(r.decision, 'deny')
      t.match(r.reason, new RegExp(`^vault\\.hashicorp\\.com/${annotation}: cannot be applied to the vault-agent(-init)? container: operation \\d+ makes the container \\d+ bytes; at most ${MAX_PATCHED_CONTAINER_BYTES} are accepted$`))
    }
    const small = inject({ [`vault.hashicorp.com/${annotation}`]: JSON.stringify(intoArray.slice(0, 4)) })
    t.equal(small.decision, 'inject', 'a few copies are fine')
  })

  t.test(`${annotation}: at most 100 operations, nested at most 32 levels`, async (t) => {
    const many = JSON.stringify(Array.from({ length: 101 }, () => ({ op: 'test', path: '/name', value: 'vault-agent' })))
    t.match(inject({ [`vault.hashicorp.com/${annotation}`]: many }).reason, new RegExp(`^vault\\.hashicorp\\.com/${annotation}: ".*" is not a JSON Patch \\(a JSON array of at most 100 RFC 6902 operations, nested at most 32 levels\\)$`))
    for (const depth of [40, 6_000, 15_000]) {
      const deep = `[{"op":"add","path":"/x","value":${'['.repeat(depth)}${']'.repeat(depth)}}]`
      const r = inject({ [`vault.hashicorp.com/${annotation}`]: deep })
      t.equal(r.decision, 'deny', `nested ${depth} deep: denied`)
      t.match(r.reason, /is not a JSON Patch/)
    }
    const fine = inject({ [`vault.hashicorp.com/${annotation}`]: JSON.stringify(Array.from({ length: 100 }, () => ({ op: 'add', path: '/workingDir', value: '/home/vault' }))) })
    t.equal(fine.decision, 'inject', '100 operations are accepted')
  })
}

t.test('telemetry values nested too deep are passed on as strings, with a warning', async (t) => {
  const deep = '['.repeat(6_000) + ']'.repeat(6_000)
  const r = inject({ 'vault.hashicorp.com/agent-telemetry-prometheus_retention_time': deep })
  t.equal(r.decision, 'inject')
  t.match(r.warnings, [/agent-telemetry-prometheus_retention_time: JSON nested deeper than 32 levels; passed on as a string/])
})

t.test('the revoke-on-shutdown preStop command quotes what it takes from annotations and settings', async (t) => {
  const hostile = "https://vault:8200/$(touch /tmp/pwned)'`id`"
  const r = injectPod({
    pod: annotatedPod({ 'vault.hashicorp.com/agent-revoke-on-shutdown': 'true', 'vault.hashicorp.com/service': hostile, 'vault.hashicorp.com/ca-cert': "/vault/tls/ca dir/ca.crt; reboot" }),
    namespace: 'team-a',
    settings,
  }) as EngineResult & { pod: Obj }
  t.equal(r.decision, 'inject', r.reason)
  const command = containerNamed(r.pod, 'vault-agent')!.lifecycle.preStop.exec.command
  t.same(command.slice(0, 2), ['/bin/sh', '-c'])
  // Run it through a real shell with echo in place of the programs: the words it passes are exactly the values.
  const script = command[2].replaceAll('/bin/sleep', 'printf "[%s]" sleep').replaceAll('/bin/vault', 'printf "[%s]"')
  const words = execFileSync('/bin/sh', ['-c', script]).toString()
  t.equal(words, `[sleep][5][token][revoke][-address=${hostile}][-ca-cert=/vault/tls/ca dir/ca.crt; reboot][-self]`)
  const plain = inject({ 'vault.hashicorp.com/agent-revoke-on-shutdown': 'true' })
  t.equal(containerNamed(plain.pod, 'vault-agent')!.lifecycle.preStop.exec.command[2], '/bin/sleep 5 && /bin/vault token revoke -address=https://vault.vault.svc:8200 -self', 'plain values read as vault-k8s writes them')
  for (const value of ['', "'", 'a b', '$HOME', '\n', '"']) t.equal(execFileSync('/bin/sh', ['-c', `printf %s ${shellWord(value)}`]).toString(), value, JSON.stringify(value))
})
