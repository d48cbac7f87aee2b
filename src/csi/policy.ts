// A SecretProviderClass judged by the injector's policy rules: what a mount
// will do (role, auth mount, Vault address and namespace, TLS verification,
// secret paths) is put in the shape the policy judges for injected agents,
// and the Policy's own evaluation gives the verdict. No agent container runs
// for a CSI mount, so rules on agents (image, limits, securityContext, Jobs)
// find nothing to judge.
import type { EngineResult, InjectionType } from '../engine/types.ts'
import type { Facts } from '../policy/effective.ts'
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

export function planFacts(plan: CsiMountPlan): Facts {
  return {
    agents: [],
    roles: [plan.roleName],
    authPaths: [plan.authPath],
    addresses: [plan.vaultAddress],
    vaultNamespaces: [plan.vaultNamespace || 'root'],
    secretPaths: plan.objects.map((o) => ({ path: vaultPathOf(o.secretPath), file: o.objectName })),
    tlsSkipVerify: plan.tlsSkipVerify,
    dynamicTemplates: [],
    templateFiles: [],
    templateCommands: [],
    unjudgeable: [],
  }
}

// For explain and the CLI's Evaluation: the plan as an engine result's summary.
export function planAsResult(plan: CsiMountPlan): EngineResult {
  return {
    decision: 'skip',
    reason: 'CSI mount',
    pod: {},
    patch: [],
    warnings: [],
    agent: {
      role: plan.roleName,
      authType: 'kubernetes',
      authPath: plan.authPath,
      vaultAddress: plan.vaultAddress,
      // Not one of the injector's kinds; the audit line says csi.
      injectionType: 'csi' as unknown as InjectionType,
      mode: 'csi',
      tokenSource: { kind: 'projected', volume: 'csi', tokenPath: '' },
      secrets: plan.objects.map((o) => ({ name: o.objectName, path: vaultPathOf(o.secretPath), file: o.objectName, template: 'csi', pathsRead: [vaultPathOf(o.secretPath)] })),
      appContainers: [],
      annotations: {},
      tlsSkipVerify: plan.tlsSkipVerify,
      hasResourceLimits: true,
    },
  }
}

// namespaceLabels undefined: the namespace is unknown (NamespaceContext.labelsUnknown).
export function judgeMount(policy: PolicyEvaluator, plan: CsiMountPlan, namespaceLabels: Readonly<Record<string, string>> | undefined): PolicyVerdict {
  const ns = { namespace: plan.namespace, namespaceLabels: { 'kubernetes.io/metadata.name': plan.namespace, ...(namespaceLabels ?? {}) }, ...(namespaceLabels ? {} : { labelsUnknown: true }) }
  if (!policy.applies(ns)) return { warnings: [], findings: [] }
  return policy.evaluate({ ...ns, final: {}, isJob: false, facts: planFacts(plan), hatches: [] })
}
