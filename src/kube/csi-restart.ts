// Rolling restarts on secret rotation, for apps that read a CSI-mounted secret
// only at start. The Secrets Store CSI Driver records the object versions of
// each pod's mount in a SecretProviderClassPodStatus; when a version changes
// (rotation wrote a new file), the pod's Deployment, StatefulSet or DaemonSet
// is rolled the way `kubectl rollout restart` does it (the pod template's
// kubectl.kubernetes.io/restartedAt annotation), if the workload opts in with
// vault-injector.dev/restart-on-secret-change: "true". Done by one replica (a
// Lease), at most once per workload per interval, with an Event on the
// workload naming the secret objects, never their values.
import { AppsV1Api, CoreV1Api, CustomObjectsApi, makeInformer, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node'
import type { Logger } from '../log.ts'
import { apiErrorText } from './client.ts'
import { defaultIdentity, LeaderElector, leaseStore } from './leader.ts'

export const RESTART_ANNOTATION = 'vault-injector.dev/restart-on-secret-change'
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt'
export const RESTART_LEASE = 'vault-injector-csi-restart'

interface PodStatusObject extends KubernetesObject {
  status?: { podName?: string; secretProviderClassName?: string; mounted?: boolean; objects?: { id?: string; version?: string }[] }
}

type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet'
interface Owner {
  kind?: string
  name?: string
  controller?: boolean
}
interface Workload {
  metadata?: { name?: string; namespace?: string; uid?: string; annotations?: Record<string, string> }
  spec?: { template?: { metadata?: { annotations?: Record<string, string> } } }
}

// What the controller needs from the API, so its tests can use the real one or a stand-in.
export interface RestartApi {
  readPodOwner(namespace: string, name: string): Promise<Owner | undefined>
  readReplicaSetOwner(namespace: string, name: string): Promise<Owner | undefined>
  readWorkload(kind: WorkloadKind, namespace: string, name: string): Promise<Workload>
  patchTemplateAnnotations(kind: WorkloadKind, namespace: string, name: string, ops: object[]): Promise<void>
  createEvent(workload: Workload, kind: WorkloadKind, reason: string, message: string): Promise<void>
}

const controllerOf = (owners: Owner[] | undefined): Owner | undefined => owners?.find((o) => o.controller) ?? owners?.[0]

export function restartApi(kc: KubeConfig): RestartApi {
  const core = kc.makeApiClient(CoreV1Api)
  const apps = kc.makeApiClient(AppsV1Api)
  return {
    readPodOwner: async (namespace, name) => controllerOf((await core.readNamespacedPod({ namespace, name })).metadata?.ownerReferences),
    readReplicaSetOwner: async (namespace, name) => controllerOf((await apps.readNamespacedReplicaSet({ namespace, name })).metadata?.ownerReferences),
    readWorkload: (kind, namespace, name) =>
      kind === 'Deployment' ? apps.readNamespacedDeployment({ namespace, name }) : kind === 'StatefulSet' ? apps.readNamespacedStatefulSet({ namespace, name }) : apps.readNamespacedDaemonSet({ namespace, name }),
    patchTemplateAnnotations: async (kind, namespace, name, body) => {
      if (kind === 'Deployment') await apps.patchNamespacedDeployment({ namespace, name, body })
      else if (kind === 'StatefulSet') await apps.patchNamespacedStatefulSet({ namespace, name, body })
      else await apps.patchNamespacedDaemonSet({ namespace, name, body })
    },
    createEvent: async (workload, kind, reason, message) => {
      const now = new Date()
      const namespace = workload.metadata?.namespace ?? 'default'
      await core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${workload.metadata?.name ?? 'workload'}.`, namespace },
          involvedObject: { apiVersion: 'apps/v1', kind, name: workload.metadata?.name, namespace, uid: workload.metadata?.uid },
          reason,
          message,
          type: 'Normal',
          source: { component: 'vault-injector' },
          reportingComponent: 'vault-injector',
          reportingInstance: defaultIdentity(process.env.POD_NAME ?? ''),
          action: 'RolloutRestart',
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
    },
  }
}

export interface RestartOptions {
  api: RestartApi
  logger: Logger
  minIntervalMs: number
  now?: () => number
}

// Decides and acts; the watch (below) feeds it.
export class RestartController {
  #options: RestartOptions
  // ns/name of a pod status → object id → version, as last seen.
  #seen = new Map<string, Map<string, string>>()
  // kind/ns/name of a workload → changed objects waiting for the interval to pass.
  #pending = new Map<string, { timer: NodeJS.Timeout; objects: Set<string>; pods: Set<string> }>()
  leading = false

  constructor(options: RestartOptions) {
    this.#options = options
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now()
  }

  // A pod status added or updated. Returns the objects whose version changed.
  observe(status: PodStatusObject): string[] {
    const key = `${status.metadata?.namespace}/${status.metadata?.name}`
    const current = new Map((status.status?.objects ?? []).map((o) => [o.id ?? '', o.version ?? '']))
    const before = this.#seen.get(key)
    this.#seen.set(key, current)
    // The first sight of a mount (a new pod, or this replica starting) is no rotation.
    if (!before) return []
    const changed = [...current].filter(([id, version]) => before.has(id) && before.get(id) !== version).map(([id]) => id)
    if (changed.length > 0 && this.leading) void this.#restartFor(status, changed)
    return changed
  }

  forget(status: PodStatusObject): void {
    this.#seen.delete(`${status.metadata?.namespace}/${status.metadata?.name}`)
  }

  async #restartFor(status: PodStatusObject, objects: string[]): Promise<void> {
    const namespace = status.metadata?.namespace ?? ''
    const pod = status.status?.podName ?? ''
    const spc = status.status?.secretProviderClassName ?? ''
    const { api, logger } = this.#options
    try {
      const owner = await api.readPodOwner(namespace, pod)
      let kind = owner?.kind
      let name = owner?.name
      if (kind === 'ReplicaSet' && name) {
        const rsOwner = await api.readReplicaSetOwner(namespace, name)
        kind = rsOwner?.kind
        name = rsOwner?.name
      }
      if ((kind !== 'Deployment' && kind !== 'StatefulSet' && kind !== 'DaemonSet') || !name) return
      await this.#restart(kind, namespace, name, spc, objects, pod)
    } catch (error) {
      logger.warn({ namespace, pod, secretProviderClass: spc, err: apiErrorText(error) }, 'csi restart: could not find or roll the pod\'s workload')
    }
  }

  async #restart(kind: WorkloadKind, namespace: string, name: string, spc: string, objects: string[], pod: string): Promise<void> {
    const { api, logger, minIntervalMs } = this.#options
    const workload = await api.readWorkload(kind, namespace, name)
    if (workload.metadata?.annotations?.[RESTART_ANNOTATION] !== 'true') return
    const key = `${kind}/${namespace}/${name}`
    const waiting = this.#pending.get(key)
    if (waiting) {
      for (const o of objects) waiting.objects.add(`${spc}/${o}`)
      waiting.pods.add(pod)
      return
    }
    const templateAnnotations = workload.spec?.template?.metadata?.annotations
    const last = Date.parse(templateAnnotations?.[RESTARTED_AT] ?? '')
    const due = Number.isFinite(last) ? last + minIntervalMs : 0
    if (this.#now() < due) {
      // Rate limit: one restart per interval; changes meanwhile are gathered into the next one.
      const entry = { objects: new Set(objects.map((o) => `${spc}/${o}`)), pods: new Set([pod]), timer: setTimeout(() => void this.#flush(kind, namespace, name), due - this.#now()) }
      entry.timer.unref()
      this.#pending.set(key, entry)
      logger.info({ kind, namespace, name, dueInMs: due - this.#now() }, 'csi restart: rate-limited; the workload will be rolled when the interval has passed')
      return
    }
    await this.#roll(kind, workload, new Set(objects.map((o) => `${spc}/${o}`)), new Set([pod]))
  }

  async #flush(kind: WorkloadKind, namespace: string, name: string): Promise<void> {
    const key = `${kind}/${namespace}/${name}`
    const entry = this.#pending.get(key)
    this.#pending.delete(key)
    if (!entry || !this.leading) return
    try {
      const workload = await this.#options.api.readWorkload(kind, namespace, name)
      if (workload.metadata?.annotations?.[RESTART_ANNOTATION] === 'true') await this.#roll(kind, workload, entry.objects, entry.pods)
    } catch (error) {
      this.#options.logger.warn({ kind, namespace, name, err: apiErrorText(error) }, 'csi restart: could not roll the workload')
    }
  }

  async #roll(kind: WorkloadKind, workload: Workload, objects: Set<string>, pods: Set<string>): Promise<void> {
    const { api, logger } = this.#options
    const namespace = workload.metadata?.namespace ?? ''
    const name = workload.metadata?.name ?? ''
    const at = new Date(this.#now()).toISOString().replace(/\.\d{3}Z$/, 'Z')
    const hasAnnotations = workload.spec?.template?.metadata?.annotations !== undefined
    const hasMetadata = workload.spec?.template?.metadata !== undefined
    const ops = hasAnnotations
      ? [{ op: 'add', path: `/spec/template/metadata/annotations/${RESTARTED_AT.replace(/~/g, '~0').replace(/\//g, '~1')}`, value: at }]
      : hasMetadata
        ? [{ op: 'add', path: '/spec/template/metadata/annotations', value: { [RESTARTED_AT]: at } }]
        : [{ op: 'add', path: '/spec/template/metadata', value: { annotations: { [RESTARTED_AT]: at } } }]
    await api.patchTemplateAnnotations(kind, namespace, name, ops)
    const list = [...objects].sort()
    const message = `Rolling restart: secret object${list.length > 1 ? 's' : ''} ${list.join(', ')} changed (SecretProviderClass/object, seen in pod ${[...pods].sort().join(', ')})`
    logger.info({ kind, namespace, name, objects: list, restartedAt: at }, 'csi restart: workload rolled after secret rotation')
    await api.createEvent(workload, kind, 'SecretRotated', message).catch((error: unknown) => logger.warn({ kind, namespace, name, err: apiErrorText(error) }, 'csi restart: rolled, but the Event was not created'))
  }

  close(): void {
    for (const entry of this.#pending.values()) clearTimeout(entry.timer)
    this.#pending.clear()
  }
}

const GROUP = 'secrets-store.csi.x-k8s.io'

// Said once the restarter acts on every rotation from then on: it leads and its
// list of SecretProviderClassPodStatus objects is in (the watch goes on from
// that list's resourceVersion, so no later change is missed). Tests wait for it.
export const RESTARTER_READY = 'csi restart: leading, and watching SecretProviderClassPodStatus objects: rotations from now on roll opted-in workloads'

// A failed list or watch is retried soon, then less often: a new CRD's storage
// answers 429 for a moment after it is Established, and a missing CRD (no driver
// installed) should not be asked for every second.
export const RETRY_FIRST_MS = 500
export const RETRY_MAX_MS = 30_000

// The watch on SecretProviderClassPodStatus objects, and the Lease that picks
// the one replica that acts. Every replica watches (so a new leader knows the
// versions already mounted); only the leader rolls workloads. With
// watchNamespaces, one watch per namespace instead of one cluster-wide, so
// namespaced Roles suffice (and workloads elsewhere are never seen).
export function startCsiRestarts(kc: KubeConfig, options: { logger: Logger; minIntervalMs: number; namespace: string; podName: string; useLeaderElector: boolean; watchNamespaces?: readonly string[] }): { controller: RestartController; stop(): Promise<void> } {
  const { logger } = options
  const controller = new RestartController({ api: restartApi(kc), logger, minIntervalMs: options.minIntervalMs })
  const custom = kc.makeApiClient(CustomObjectsApi)
  const scopes: (string | undefined)[] = options.watchNamespaces?.length ? [...options.watchNamespaces] : [undefined]
  // Each scope's list is in; until then a version seen is no baseline for a rotation.
  const listed = new Set<string | undefined>()
  const allListed = (): boolean => listed.size === scopes.length
  let announced = false
  const announce = (): void => {
    if (!allListed() || !controller.leading) {
      announced = false
      return
    }
    if (announced) return
    announced = true
    logger.info({}, RESTARTER_READY)
  }
  let stopped = false
  const retries = new Set<NodeJS.Timeout>()
  const informers = scopes.map((scope) => {
    let failures = 0
    const list = async (): Promise<never> => {
      const args = { group: GROUP, version: 'v1', plural: 'secretproviderclasspodstatuses' }
      const result = (await (scope === undefined ? custom.listClusterCustomObject(args) : custom.listNamespacedCustomObject({ ...args, namespace: scope }))) as { items?: unknown[] }
      failures = 0
      if (!listed.has(scope)) logger.info({ objects: result.items?.length ?? 0, ...(scope === undefined ? {} : { namespace: scope }) }, 'csi restart: SecretProviderClassPodStatus objects listed; watching them from here')
      listed.add(scope)
      // After the informer has taken in the listed objects (it does so as soon as this resolves).
      setImmediate(announce)
      return result as never
    }
    // client-node's informer emits 'connect' before it lists, so 'connect' says
    // nothing about the list having worked; the list above is the signal.
    const path = scope === undefined ? `/apis/${GROUP}/v1/secretproviderclasspodstatuses` : `/apis/${GROUP}/v1/namespaces/${scope}/secretproviderclasspodstatuses`
    const informer = makeInformer<PodStatusObject>(kc, path, list)
    informer.on('add', (o) => {
      failures = 0
      controller.observe(o)
    })
    informer.on('update', (o) => {
      failures = 0
      controller.observe(o)
    })
    informer.on('delete', (o) => controller.forget(o))
    informer.on('error', (error: unknown) => {
      if (stopped) return
      const delayMs = Math.min(RETRY_FIRST_MS * 2 ** failures, RETRY_MAX_MS)
      failures++
      logger.warn({ err: apiErrorText(error), retryInMs: delayMs, ...(scope === undefined ? {} : { namespace: scope }) }, 'csi restart: SecretProviderClassPodStatus list or watch failed (is the Secrets Store CSI Driver installed?); retrying')
      const retry = setTimeout(() => {
        retries.delete(retry)
        void informer.start().catch(() => {})
      }, delayMs).unref()
      retries.add(retry)
    })
    void informer.start().catch(() => {})
    return informer
  })
  let elector: LeaderElector | undefined
  if (options.useLeaderElector) {
    elector = new LeaderElector({
      store: leaseStore(kc, options.namespace, RESTART_LEASE),
      namespace: options.namespace,
      name: RESTART_LEASE,
      identity: defaultIdentity(options.podName),
      logger,
      onChange: (leading) => {
        controller.leading = leading
        announce()
      },
    })
    elector.start()
  } else controller.leading = true
  logger.info({ minIntervalMs: options.minIntervalMs, leaderElection: options.useLeaderElector, namespaces: scopes[0] === undefined ? 'all' : scopes }, 'csi restart: starting the SecretProviderClassPodStatus watch')
  return {
    controller,
    stop: async () => {
      stopped = true
      for (const retry of retries) clearTimeout(retry)
      controller.close()
      await elector?.stop()
      await Promise.all(informers.map((informer) => informer.stop()))
    },
  }
}
