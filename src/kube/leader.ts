// Leader election on a coordination.k8s.io/v1 Lease, as client-go's
// leaderelection does: the holder renews the lease; others take it over only
// once it has gone unrenewed for its whole duration. Writes carry the
// resourceVersion they read, so two candidates can never both win.
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node'
import { apiErrorText, isConflict, isNotFound } from './client.ts'
import type { Logger } from '../tls/files.ts'

export interface LeaseStore {
  read(): Promise<V1Lease | undefined>
  create(lease: V1Lease): Promise<V1Lease>
  replace(lease: V1Lease): Promise<V1Lease>
}

export function leaseStore(kc: KubeConfig, namespace: string, name: string): LeaseStore {
  const api = kc.makeApiClient(CoordinationV1Api)
  return {
    async read() {
      try {
        return await api.readNamespacedLease({ name, namespace })
      } catch (error) {
        if (isNotFound(error)) return undefined
        throw error
      }
    },
    create: (body) => api.createNamespacedLease({ namespace, body }),
    replace: (body) => api.replaceNamespacedLease({ name, namespace, body }),
  }
}

export interface ElectorOptions {
  store: LeaseStore
  namespace: string
  name: string
  identity: string
  leaseDurationMs?: number
  renewIntervalMs?: number
  now?: () => Date
  logger: Logger
  onChange(leading: boolean): void
}

export class LeaderElector {
  #o: Required<Omit<ElectorOptions, 'onChange' | 'logger' | 'store'>> & Pick<ElectorOptions, 'onChange' | 'logger' | 'store'>
  #leading = false
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor(options: ElectorOptions) {
    this.#o = { leaseDurationMs: 15_000, renewIntervalMs: 5_000, now: () => new Date(), ...options }
  }

  get leading(): boolean {
    return this.#leading
  }

  start(): void {
    const loop = async (): Promise<void> => {
      await this.tryAcquireOrRenew()
      if (!this.#stopped) this.#timer = setTimeout(() => void loop(), this.#o.renewIntervalMs).unref()
    }
    void loop()
  }

  #set(leading: boolean): void {
    if (leading === this.#leading) return
    this.#leading = leading
    this.#o.logger.info({ lease: this.#o.name, identity: this.#o.identity }, leading ? 'became leader' : 'lost leadership')
    this.#o.onChange(leading)
  }

  #spec(lease: V1Lease | undefined, now: Date): V1Lease['spec'] {
    const sameHolder = lease?.spec?.holderIdentity === this.#o.identity
    return {
      holderIdentity: this.#o.identity,
      leaseDurationSeconds: Math.ceil(this.#o.leaseDurationMs / 1000),
      acquireTime: sameHolder && lease?.spec?.acquireTime ? lease.spec.acquireTime : now,
      renewTime: now,
      leaseTransitions: (lease?.spec?.leaseTransitions ?? 0) + (lease && !sameHolder ? 1 : 0),
    }
  }

  #expired(lease: V1Lease, now: Date): boolean {
    const spec = lease.spec
    if (!spec?.holderIdentity) return true
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0
    const durationMs = (spec.leaseDurationSeconds ?? 0) * 1000
    return renewed + durationMs < now.getTime()
  }

  // One round: returns whether this candidate leads afterwards.
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.#o.now()
    try {
      const lease = await this.#o.store.read()
      if (!lease) {
        await this.#o.store.create({ metadata: { name: this.#o.name, namespace: this.#o.namespace }, spec: this.#spec(undefined, now) })
      } else if (lease.spec?.holderIdentity === this.#o.identity || this.#expired(lease, now)) {
        await this.#o.store.replace({ ...lease, spec: this.#spec(lease, now) })
      } else {
        this.#set(false)
        return false
      }
      this.#set(true)
      return true
    } catch (error) {
      // A conflict means another candidate wrote first: it leads this round.
      if (!isConflict(error)) this.#o.logger.warn({ lease: this.#o.name, err: apiErrorText(error) }, 'lease update failed')
      this.#set(false)
      return false
    }
  }

  // Give the lease up so another replica takes over at once.
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer) clearTimeout(this.#timer)
    if (!this.#leading) return
    try {
      const lease = await this.#o.store.read()
      if (lease?.spec?.holderIdentity === this.#o.identity) {
        await this.#o.store.replace({ ...lease, spec: { ...lease.spec, holderIdentity: '', renewTime: this.#o.now() } })
      }
    } catch (error) {
      this.#o.logger.warn({ err: apiErrorText(error) }, 'could not release the lease')
    }
    this.#set(false)
  }
}
