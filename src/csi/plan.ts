// What a mount of a class will do once the provider's defaults fill what the
// class leaves out: the values the policy judges, in the provider (Mount) and
// in CI (`explain`, `test` on SecretProviderClass documents) alike.
import type { CsiParams } from './params.ts'
import type { CsiMountPlan } from './policy.ts'
import type { VaultTls } from './vault.ts'

// What the provider uses when a class does not say (HashiCorp's flags of the same meaning).
export interface ProviderDefaults {
  vaultAddress: string
  // "kubernetes" or "auth/kubernetes".
  authMountPath: string
  vaultNamespace: string
  tls: VaultTls
}

export const NO_TLS: VaultTls = { caCertPath: '', caDirectory: '', serverName: '', clientCertPath: '', clientKeyPath: '', skipVerify: false }

// The provider's TLS settings with the class's on top, field by field.
export function tlsFor(params: CsiParams, defaults: ProviderDefaults): VaultTls {
  const d = defaults.tls
  const c = params.tls
  return {
    caCertPath: c.caCertPath || d.caCertPath,
    caDirectory: c.caDirectory || d.caDirectory,
    serverName: c.serverName || d.serverName,
    clientCertPath: c.clientCertPath || d.clientCertPath,
    clientKeyPath: c.clientKeyPath || d.clientKeyPath,
    skipVerify: c.skipVerify || d.skipVerify,
  }
}

export function mountPlan(params: CsiParams, defaults: ProviderDefaults): CsiMountPlan {
  const mount = (params.authMountPath || defaults.authMountPath).replace(/^\/+|\/+$/g, '').replace(/^auth\//, '')
  return {
    namespace: params.pod.namespace,
    podName: params.pod.name,
    serviceAccountName: params.pod.serviceAccountName,
    roleName: params.roleName,
    authPath: `auth/${mount}`,
    vaultAddress: params.vaultAddress || defaults.vaultAddress,
    vaultNamespace: params.vaultNamespace || defaults.vaultNamespace,
    tlsSkipVerify: tlsFor(params, defaults).skipVerify,
    objects: params.objects,
  }
}
