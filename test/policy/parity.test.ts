// The golden workloads through both paths, as Istio runs its injection
// goldens: the CLI (`inject`/`explain`/`test`, which judge a workload's pod
// template) and the webhook (admit, which judges the pod the controller
// creates from it, owned as the controller owns it). The injected pod, the
// decision, the reason, the warnings and the policy findings must be
// identical, byte for byte.
import t from 'tap'
import fastJsonPatch from 'fast-json-patch'
import { readdirSync, readFileSync } from 'node:fs'
import { evaluate } from '../../src/cli/evaluate.ts'
import { parseManifests, podOf } from '../../src/cli/manifests.ts'
import { defaultSettings } from '../../src/settings.ts'
import type { JsonObject } from '../../src/engine/types.ts'
import { parsePolicy } from '../../src/policy/load.ts'
import { admit } from '../../src/webhook/admission.ts'

type Obj = Record<string, any>
const dir = new URL('../golden/', import.meta.url)
const settings = defaultSettings()
// An audit rule that finds something in most pods, so findings are compared too.
const policy = parsePolicy(`apiVersion: vault-injector.dev/v1alpha1
kind: InjectorPolicy
spec:
  rules:
    - name: watch
      mode: audit
      allow: {roles: [app], secretPaths: ["secret/data/app/**"]}
      require: {restrictedSecurityContext: true, jobsInitOnlyOrNative: true, resourceLimits: true}
    - name: hint
      mode: warn
      allow: {vaultAddresses: ["https://vault.vault.svc:8200"]}
`, 'parity policy')

const OWNER: Record<string, string> = { Deployment: 'ReplicaSet', CronJob: 'Job', Job: 'Job', StatefulSet: 'StatefulSet', DaemonSet: 'DaemonSet', ReplicaSet: 'ReplicaSet', ReplicationController: 'ReplicationController' }

// Keys sorted, so that the order in which a patch adds keys does not count.
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v))
}

function podFrom(object: Obj, kind: string, template: Obj, namespace: string): Obj {
  if (kind === 'Pod') return structuredClone(object)
  const metadata = structuredClone(template.metadata ?? {})
  return { apiVersion: 'v1', kind: 'Pod', metadata: { ...metadata, name: `${object.metadata?.name ?? 'x'}-abcde`, namespace, ownerReferences: [{ apiVersion: 'v1', kind: OWNER[kind], name: object.metadata?.name ?? 'x', uid: 'u', controller: true }] }, spec: structuredClone(template.spec ?? {}) }
}

const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && !f.endsWith('.injected.yaml')).sort()
for (const file of files) {
  for (const withPolicy of [false, true]) {
    t.test(`${file}${withPolicy ? ' with a policy' : ''}: the webhook and the CLI agree`, async (t) => {
      const items = parseManifests(readFileSync(new URL(file, dir), 'utf8'), file).flatMap((d) => {
        const o = d.object as Obj
        return o?.kind === 'List' ? (o.items as unknown[]) : [o]
      })
      let compared = 0
      for (const item of items) {
        const location = podOf(item)
        if (!location) continue
        const object = item as Obj
        const namespace = object.metadata?.namespace ?? 'default'
        const pod = podFrom(object, location.kind, location.pod, namespace)
        const cli = evaluate(structuredClone(item), { settings, namespace: 'default', policy: withPolicy ? policy : undefined })!
        const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace, operation: 'CREATE', object: pod } }
        const outcome = admit(review, { settings, policy: withPolicy ? policy : undefined })
        const response = outcome.body.response as Obj
        const name = `${file} ${object.kind} ${object.metadata?.name}`
        t.equal(response.allowed ? 'allowed' : 'denied', cli.decision === 'deny' ? 'denied' : 'allowed', `${name}: same decision`)
        t.same(response.warnings ?? [], cli.warnings, `${name}: same warnings`)
        t.equal(outcome.audit!.decision, cli.decision, `${name}: same audit decision`)
        t.equal(canonical(outcome.audit!.policyFindings ?? []), canonical(cli.judgement.audit.policyFindings ?? []), `${name}: same findings`)
        if (response.status) t.equal(response.status.message, cli.reason, `${name}: same denial`)
        if (cli.decision !== 'inject') continue
        const patched = fastJsonPatch.applyPatch(structuredClone(pod), JSON.parse(Buffer.from(response.patch, 'base64').toString()), true, false).newDocument as JsonObject
        const mutated = cli.result.pod as Obj
        t.equal(canonical({ annotations: (patched.metadata as Obj).annotations, spec: patched.spec }), canonical({ annotations: mutated.metadata?.annotations, spec: mutated.spec }), `${name}: the same pod, byte for byte`)
        compared++
      }
      t.ok(compared > 0, `${compared} injected pod(s) compared`)
    })
  }
}
