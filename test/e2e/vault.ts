// A Vault dev server for the e2e suites, with Kubernetes auth against the e2e
// API server, as an operator sets it up: auth/kubernetes enabled and pointed at
// the API server, and a `vault-reviewer` ServiceAccount bound to
// system:auth-delegator whose token Vault reviews the pods' tokens with.
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { serviceAccountToken, startVaultDev, type ControlPlane, type Process } from './harness.ts'

type Obj = Record<string, any>

export interface DevVault {
  // http://host:port
  address: string
  // A call with the root token; throws with Vault's answer on an error status.
  api(method: string, path: string, body?: unknown): Promise<Obj>
  process: Process
  stop(): Promise<void>
}

// `namespace` must exist; `host` is where pods reach Vault (loopback, or a node's bridge).
export async function startVault(cp: ControlPlane, namespace: string, host = '127.0.0.1'): Promise<DevVault> {
  const { process: proc, addr: address } = await startVaultDev(cp.dir, host)
  const api = async (method: string, path: string, body?: unknown): Promise<Obj> => {
    const res = await fetch(`${address}/v1/${path}`, { method, headers: { 'X-Vault-Token': 'root', 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) })
    const text = await res.text()
    if (!res.ok) throw new Error(`Vault ${method} ${path}: ${res.status} ${text}`)
    return text ? (JSON.parse(text) as Obj) : {}
  }

  await cp.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'vault-reviewer' } } })
  await cp.kubeConfig.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: `vault-reviewer-${namespace}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'vault-reviewer', namespace }],
    },
  })
  await api('POST', 'sys/auth/kubernetes', { type: 'kubernetes' })
  await api('POST', 'auth/kubernetes/config', { kubernetes_host: cp.apiUrl, kubernetes_ca_cert: cp.ca.certPem, token_reviewer_jwt: await serviceAccountToken(cp, namespace, 'vault-reviewer'), disable_local_ca_jwt: true })
  return { address, api, process: proc, stop: () => proc.stop() }
}
