// A SecretProviderClass judged by the injector's policy rules: its role, auth
// mount, Vault address, Vault namespace, TLS verification and secret paths are
// put in the shape the policy judges for an injected pod, and the Policy's own
// evaluation gives the verdict. The one seam to switch when the policy grows a
// judgement of its own for CSI mounts.
import type { EngineResult, InjectionType, JsonObject } from '../engine/types.ts'
import type { PolicyEvaluator, PolicyVerdict } from '../policy/types.ts'
import { vaultPathOf, type CsiObject } from './params.ts'

// What a mount will do, after the provider's defaults are applied.
export interface CsiMountPlan {
  namespace: string
  podName: string
  serviceAccountName: string
  roleName: string
  // "auth/kubernetes", as the vault.hashicorp.com/auth-path annotation writes it.
  authPath: string
  vaultAddress: string
  vaultNamespace: string
  tlsSkipVerify: boolean
  objects: CsiObject[]
}

// The annotations a pod would carry to ask the injector for the same thing,
// so rules written for annotations see the same values.
function equivalentAnnotations(plan: CsiMountPlan): Record<string, string> {
  return {
    'vault.hashicorp.com/role': plan.roleName,
    'vault.hashicorp.com/auth-path': plan.authPath,
    'vault.hashicorp.com/service': plan.vaultAddress,
    ...(plan.vaultNamespace ? { 'vault.hashicorp.com/namespace': plan.vaultNamespace } : {}),
    'vault.hashicorp.com/tls-skip-verify': String(plan.tlsSkipVerify),
  }
}

export function planAsResult(plan: CsiMountPlan): EngineResult {
  return {
    decision: 'inject',
    reason: 'CSI mount',
    pod: {},
    patch: [],
    warnings: [],
    agent: {
      role: plan.roleName,
      authType: 'kubernetes',
      authPath: plan.authPath,
      vaultAddress: plan.vaultAddress,
      // Not one of the injector's kinds; the audit line says csi. The policy does not read it.
      injectionType: 'csi' as unknown as InjectionType,
      mode: 'csi',
      tokenSource: { kind: 'projected', volume: 'csi', tokenPath: '' },
      secrets: plan.objects.map((o) => ({ name: o.objectName, path: vaultPathOf(o.secretPath), file: o.objectName, template: 'csi', pathsRead: [vaultPathOf(o.secretPath)] })),
      appContainers: [],
      annotations: equivalentAnnotations(plan),
      tlsSkipVerify: plan.tlsSkipVerify,
      // No agent container runs: the limits rule has nothing to judge.
      hasResourceLimits: true,
    },
  }
}

export function judgeMount(policy: PolicyEvaluator, plan: CsiMountPlan, namespaceLabels: Readonly<Record<string, string>>): PolicyVerdict {
  const pod: JsonObject = { metadata: { name: plan.podName, namespace: plan.namespace }, spec: { serviceAccountName: plan.serviceAccountName } }
  return policy.evaluate({ namespace: plan.namespace, namespaceLabels, pod }, planAsResult(plan))
}
