// Where auto-TLS keeps its CA and certificate without the leader elector: in
// this process's memory, as vault-k8s does with one replica. vault-helm grants
// a single replica no access to Secrets; a restart makes a new CA, and the
// caBundle keeps the previous one until it expires (reconcile.ts).
import type { SecretData, SecretStore } from './stores.ts'

export function memorySecretStore(): SecretStore {
  let stored: { data: SecretData; resourceVersion: string } | undefined
  let version = 0
  return {
    read: () => Promise.resolve(stored && { data: { ...stored.data }, resourceVersion: stored.resourceVersion }),
    write(data, resourceVersion) {
      if (resourceVersion !== stored?.resourceVersion) return Promise.reject(new Error('conflict: the in-memory certificate store changed'))
      stored = { data: { ...data }, resourceVersion: String(++version) }
      return Promise.resolve(stored.resourceVersion)
    },
  }
}
