// Leader election where the injector may not touch Leases: vault-helm's chart
// grants the injector's ServiceAccount secrets, configmaps and pods in its
// namespace, and no leases, because vault-k8s elects its leader with a
// ConfigMap named vault-k8s-leader. Here the same ConfigMap carries the
// leader record in the annotation client-go's ConfigMap lock used
// (control-plane.alpha.kubernetes.io/leader), so the elector in leader.ts
// runs unchanged on it: renewals, takeover after a whole unrenewed lease
// duration, release on shutdown, every write guarded by resourceVersion.
//
// vault-k8s's own lock (operator-lib's "leader for life": the ConfigMap
// exists, owned by the leader's Pod, with no annotation) reads here as held
// by that pod and, never renewed, is taken over once a lease duration has
// passed; the owner reference is dropped then, so the garbage collector does
// not delete our lock when that pod goes.
import { ApiException, CoreV1Api, V1MicroTime, type KubeConfig, type V1ConfigMap, type V1Lease } from '@kubernetes/client-node'
import { apiErrorText, isNotFound } from './client.ts'
import type { LeaseStore } from './leader.ts'
import type { Logger } from '../log.ts'

export const CONFIGMAP_LOCK_NAME = 'vault-k8s-leader'
export const LEADER_ANNOTATION = 'control-plane.alpha.kubernetes.io/leader'

// client-go's LeaderElectionRecord, as it is stored in the annotation.
interface LeaderRecord {
  holderIdentity?: string
  leaseDurationSeconds?: number
  acquireTime?: string
  renewTime?: string
  leaderTransitions?: number
}

const time = (value: string | undefined): V1MicroTime | undefined => (value ? new V1MicroTime(Date.parse(value)) : undefined)

export function leaseFromConfigMap(configMap: V1ConfigMap): V1Lease {
  const text = configMap.metadata?.annotations?.[LEADER_ANNOTATION]
  let record: LeaderRecord = {}
  if (text) {
    try {
      record = JSON.parse(text) as LeaderRecord
    } catch {
      record = {}
    }
  } else {
    // vault-k8s's leader-for-life lock: its holder is the owning pod.
    const owner = configMap.metadata?.ownerReferences?.find((o) => o.kind === 'Pod')
    if (owner) record = { holderIdentity: owner.name }
  }
  const acquireTime = time(record.acquireTime)
  const renewTime = time(record.renewTime)
  return {
    metadata: { ...(configMap.metadata?.name ? { name: configMap.metadata.name } : {}), ...(configMap.metadata?.resourceVersion ? { resourceVersion: configMap.metadata.resourceVersion } : {}) },
    spec: {
      ...(record.holderIdentity !== undefined ? { holderIdentity: record.holderIdentity } : {}),
      ...(record.leaseDurationSeconds !== undefined ? { leaseDurationSeconds: record.leaseDurationSeconds } : {}),
      ...(acquireTime ? { acquireTime } : {}),
      ...(renewTime ? { renewTime } : {}),
      ...(record.leaderTransitions !== undefined ? { leaseTransitions: record.leaderTransitions } : {}),
    },
  }
}

function recordOf(lease: V1Lease): string {
  const spec = lease.spec ?? {}
  const record: LeaderRecord = {
    holderIdentity: spec.holderIdentity ?? '',
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    ...(spec.acquireTime ? { acquireTime: new Date(spec.acquireTime).toISOString() } : {}),
    ...(spec.renewTime ? { renewTime: new Date(spec.renewTime).toISOString() } : {}),
    leaderTransitions: spec.leaseTransitions ?? 0,
  }
  return JSON.stringify(record)
}

export function configMapLockStore(kc: KubeConfig, namespace: string, name = CONFIGMAP_LOCK_NAME): LeaseStore {
  const api = kc.makeApiClient(CoreV1Api)
  const body = (lease: V1Lease): V1ConfigMap => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace,
      labels: { 'app.kubernetes.io/name': 'vault-injector', 'app.kubernetes.io/component': 'leader-election' },
      annotations: { [LEADER_ANNOTATION]: recordOf(lease) },
      ...(lease.metadata?.resourceVersion ? { resourceVersion: lease.metadata.resourceVersion } : {}),
    },
  })
  return {
    async read() {
      try {
        return leaseFromConfigMap(await api.readNamespacedConfigMap({ name, namespace }))
      } catch (error) {
        if (isNotFound(error)) return undefined
        throw error
      }
    },
    create: async (lease) => leaseFromConfigMap(await api.createNamespacedConfigMap({ namespace, body: body(lease) })),
    replace: async (lease) => leaseFromConfigMap(await api.replaceNamespacedConfigMap({ name, namespace, body: body(lease) })),
  }
}

const isForbidden = (error: unknown): boolean => error instanceof ApiException && error.code === 403

// The Lease when this ServiceAccount may read it (our manifests and chart
// grant that), else the ConfigMap lock (vault-helm's RBAC). Decided on the
// first answer and kept: every replica runs as the same ServiceAccount, so
// all of them decide alike.
export function leaseOrConfigMapStore(lease: LeaseStore, configMap: LeaseStore, logger: Logger, names: { lease: string; configMap: string }): LeaseStore {
  let chosen: LeaseStore | undefined
  const pick = async (): Promise<LeaseStore> => {
    if (chosen) return chosen
    try {
      await lease.read()
      chosen = lease
    } catch (error) {
      if (!isForbidden(error)) throw error
      logger.info({ lease: names.lease, configMap: names.configMap, err: apiErrorText(error) }, `no access to Leases: leader election uses the ConfigMap ${names.configMap}, as vault-k8s does`)
      chosen = configMap
    }
    return chosen
  }
  return {
    read: async () => (await pick()).read(),
    create: async (body) => (await pick()).create(body),
    replace: async (body) => (await pick()).replace(body),
  }
}
