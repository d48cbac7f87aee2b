// Leader election on a coordination.k8s.io/v1 Lease, the way client-go's
// leaderelection does it:
// - the holder renews the Lease every renewInterval;
// - a candidate takes the Lease over only once it has seen no change to it for
//   a whole lease duration, timed by its own clock from the moment it saw the
//   last change (never by comparing the holder's renewTime with its own clock,
//   so clock skew between nodes cannot cut a term short);
// - a holder that has not renewed for renewDeadline (< lease duration) steps
//   down on its own, before anyone may take over;
// - every write carries the resourceVersion it read, so two candidates can
//   never both win a round; the loser gets a 409;
// - on shutdown the holder releases the Lease so another replica takes it at once.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node'
import { hostname } from 'node:os'
import { apiErrorText, isConflict, isNotFound } from './client.ts'
import type { Logger } from '../log.ts'

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

// Timers, injectable so tests decide when time passes.
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

export interface ElectorOptions {
  store: LeaseStore
  namespace: string
  name: string
  identity: string
  leaseDurationMs?: number
  renewDeadlineMs?: number
  renewIntervalMs?: number
  now?: () => number
  timers?: Timers
  logger: Logger
  onChange(leading: boolean): void
}

export function defaultIdentity(podName: string): string {
  return podName || `${hostname()}-${process.pid}`
}

export class LeaderElector {
  readonly #store: LeaseStore
  readonly #name: string
  readonly #namespace: string
  readonly #identity: string
  readonly #leaseDurationMs: number
  readonly #renewDeadlineMs: number
  readonly #renewIntervalMs: number
  readonly #now: () => number
  readonly #timers: Timers
  readonly #logger: Logger
  readonly #onChange: (leading: boolean) => void

  #leading = false
  #stopped = false
  #loopTimer: unknown
  #deadlineTimer: unknown
  // The last version of the Lease seen, and when (by our clock) it was first seen.
  #observed: { resourceVersion: string; atMs: number } | undefined
  // Rounds and the release run one at a time, in order.
  #queue: Promise<unknown> = Promise.resolve()

  constructor(options: ElectorOptions) {
    this.#store = options.store
    this.#name = options.name
    this.#namespace = options.namespace
    this.#identity = options.identity
    this.#leaseDurationMs = options.leaseDurationMs ?? 15_000
    this.#renewDeadlineMs = options.renewDeadlineMs ?? 10_000
    this.#renewIntervalMs = options.renewIntervalMs ?? 5_000
    if (!(this.#renewIntervalMs < this.#renewDeadlineMs && this.#renewDeadlineMs < this.#leaseDurationMs)) {
      throw new Error('leader election needs renewInterval < renewDeadline < leaseDuration')
    }
    this.#now = options.now ?? (() => Date.now())
    this.#timers = options.timers ?? realTimers
    this.#logger = options.logger
    this.#onChange = options.onChange
  }

  get leading(): boolean {
    return this.#leading
  }

  get identity(): string {
    return this.#identity
  }

  start(): void {
    const loop = async (): Promise<void> => {
      await this.tryAcquireOrRenew()
      if (!this.#stopped) this.#loopTimer = this.#timers.setTimeout(() => void loop(), this.#renewIntervalMs)
    }
    void loop()
  }

  // One round: returns whether this candidate leads afterwards.
  tryAcquireOrRenew(): Promise<boolean> {
    return this.#serially(() => (this.#stopped ? Promise.resolve(false) : this.#round()))
  }

  // Give the Lease up (if held) so another replica takes over at once.
  stop(): Promise<void> {
    this.#stopped = true
    this.#timers.clearTimeout(this.#loopTimer)
    return this.#serially(() => this.#release())
  }

  #serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work)
    this.#queue = next.catch(() => {})
    return next
  }

  #set(leading: boolean): void {
    if (leading === this.#leading) return
    this.#leading = leading
    if (!leading) this.#timers.clearTimeout(this.#deadlineTimer)
    this.#logger.info({ lease: this.#name, identity: this.#identity }, leading ? 'became leader' : 'lost leadership')
    this.#onChange(leading)
  }

  // A successful write: we hold the Lease until renewDeadline from now at least.
  #renewed(lease: V1Lease, atMs: number): void {
    this.#observed = { resourceVersion: lease.metadata?.resourceVersion ?? '', atMs }
    this.#timers.clearTimeout(this.#deadlineTimer)
    this.#deadlineTimer = this.#timers.setTimeout(() => {
      this.#logger.warn({ lease: this.#name, renewDeadlineMs: this.#renewDeadlineMs }, 'lease not renewed in time; stepping down')
      this.#set(false)
    }, this.#renewDeadlineMs)
    this.#set(true)
  }

  #spec(lease: V1Lease | undefined, nowMs: number): NonNullable<V1Lease['spec']> {
    // A Lease's acquireTime and renewTime are MicroTime: kube-apiserver
    // parses exactly six fractional digits and answers 400 to the three of a
    // plain Date. client-node's V1MicroTime writes six.
    const now = new V1MicroTime(nowMs)
    const sameHolder = lease?.spec?.holderIdentity === this.#identity
    return {
      holderIdentity: this.#identity,
      leaseDurationSeconds: Math.ceil(this.#leaseDurationMs / 1000),
      acquireTime: sameHolder && lease?.spec?.acquireTime ? lease.spec.acquireTime : now,
      renewTime: now,
      leaseTransitions: (lease?.spec?.leaseTransitions ?? 0) + (lease && !sameHolder ? 1 : 0),
    }
  }

  // Free when nobody holds it, or when it has not changed for its whole
  // duration as timed by our own clock since we first saw this version.
  #free(lease: V1Lease, nowMs: number): boolean {
    if (!lease.spec?.holderIdentity) return true
    const resourceVersion = lease.metadata?.resourceVersion ?? ''
    if (this.#observed?.resourceVersion !== resourceVersion) this.#observed = { resourceVersion, atMs: nowMs }
    const durationMs = (lease.spec.leaseDurationSeconds ?? Math.ceil(this.#leaseDurationMs / 1000)) * 1000
    return nowMs >= this.#observed.atMs + durationMs
  }

  async #round(): Promise<boolean> {
    const nowMs = this.#now()
    try {
      const lease = await this.#store.read()
      if (!lease) {
        this.#renewed(await this.#store.create({ metadata: { name: this.#name, namespace: this.#namespace }, spec: this.#spec(undefined, nowMs) }), nowMs)
        return true
      }
      const mine = lease.spec?.holderIdentity === this.#identity
      if (!mine && !this.#free(lease, nowMs)) {
        this.#set(false)
        return false
      }
      // Our own Lease held by us from an earlier life of this identity, a free
      // Lease, or an expired one: write it, guarded by the version we read.
      this.#renewed(await this.#store.replace({ ...lease, spec: this.#spec(lease, nowMs) }), nowMs)
      return true
    } catch (error) {
      if (isConflict(error)) {
        // Another candidate wrote first: it leads.
        this.#set(false)
        return false
      }
      // A transient failure: a leader keeps leading until its renew deadline
      // (the timer set at the last renewal) runs out.
      this.#logger.warn({ lease: this.#name, err: apiErrorText(error) }, 'lease read or update failed')
      return this.#leading
    }
  }

  async #release(): Promise<void> {
    if (!this.#leading) return
    try {
      const lease = await this.#store.read()
      if (lease?.spec?.holderIdentity === this.#identity) {
        const now = new V1MicroTime(this.#now())
        await this.#store.replace({ ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now } })
        this.#logger.info({ lease: this.#name, identity: this.#identity }, 'lease released')
      }
    } catch (error) {
      this.#logger.warn({ lease: this.#name, err: apiErrorText(error) }, 'could not release the lease; another replica takes it when it expires')
    }
    this.#set(false)
  }
}
