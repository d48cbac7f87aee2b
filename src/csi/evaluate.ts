// SecretProviderClass documents in CI: `explain` and `test` judge a class as a
// mount of it would be judged, with the injector's settings standing in for
// the provider's defaults (the same Vault address and auth path).
import type { Settings } from '../settings.ts'
import type { JsonObject } from '../engine/types.ts'
import type { PolicyEvaluator, PolicyVerdict } from '../policy/types.ts'
import { parseAttributes, ParamsError } from './params.ts'
import { mountPlan, NO_TLS } from './plan.ts'
import { judgeMount, planAsResult, type CsiMountPlan } from './policy.ts'

export function isSecretProviderClass(object: unknown): object is JsonObject {
  const o = object as { kind?: unknown; apiVersion?: unknown } | null
  return typeof o === 'object' && o !== null && o.kind === 'SecretProviderClass' && typeof o.apiVersion === 'string' && o.apiVersion.startsWith('secrets-store.csi.x-k8s.io/')
}

export interface ClassEvaluation {
  plan?: CsiMountPlan
  verdict?: PolicyVerdict
  // 'inject' here means "would be mounted".
  decision: 'inject' | 'skip' | 'deny'
  reason: string
}

export function evaluateClass(object: JsonObject, namespace: string, settings: Settings, policy: PolicyEvaluator | undefined, namespaceLabels: Readonly<Record<string, string>>): ClassEvaluation {
  const spec = (object.spec ?? {}) as { provider?: unknown; parameters?: unknown }
  if (spec.provider !== 'vault') return { decision: 'skip', reason: `provider "${String(spec.provider)}" is not vault` }
  const parameters = typeof spec.parameters === 'object' && spec.parameters !== null ? (spec.parameters as Record<string, unknown>) : {}
  let plan: CsiMountPlan
  try {
    // A pod in the class's namespace, as the driver would describe it.
    const params = parseAttributes(JSON.stringify({ ...parameters, 'csi.storage.k8s.io/pod.namespace': namespace }), '/mount', '420')
    plan = mountPlan(params, { vaultAddress: settings.vaultAddress, authMountPath: settings.authPath, vaultNamespace: '', tls: NO_TLS })
  } catch (error) {
    if (!(error instanceof ParamsError)) throw error
    return { decision: 'deny', reason: `SecretProviderClass: ${error.message} (every mount would fail)` }
  }
  if (!policy) return { plan, decision: 'inject', reason: 'would be mounted' }
  const verdict = judgeMount(policy, plan, namespaceLabels)
  return verdict.denied !== undefined ? { plan, verdict, decision: 'deny', reason: verdict.denied } : { plan, verdict, decision: 'inject', reason: 'would be mounted' }
}

export { planAsResult }

export function explainClass(name: string, namespace: string, e: ClassEvaluation, warnings: string[]): string {
  const lines = [`${name} (namespace ${namespace}): ${e.decision === 'inject' ? 'MOUNTED (CSI provider)' : e.decision === 'skip' ? 'not ours' : 'DENIED'}`]
  if (e.plan && e.decision === 'inject') {
    lines.push(`  auth: kubernetes at ${e.plan.authPath}, role ${e.plan.roleName}; Vault ${e.plan.vaultAddress}${e.plan.vaultNamespace ? `, namespace ${e.plan.vaultNamespace}` : ''}`)
    lines.push('  files:')
    for (const o of e.plan.objects) lines.push(`    ${o.objectName} ← ${o.secretPath}${o.secretKey ? ` (key ${o.secretKey})` : ' (whole response)'}${o.filePermission ? `, mode 0${o.filePermission.toString(8)}` : ''}`)
  } else lines.push(`  why: ${e.reason}`)
  for (const w of warnings) lines.push(`  warning: ${w}`)
  for (const f of e.verdict?.findings ?? []) if (f.mode === 'audit') lines.push(`  audit: ${f.message}`)
  return lines.join('\n')
}
