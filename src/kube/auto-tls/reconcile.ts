// The auto-TLS reconcile loop (AGENT_INJECT_TLS_AUTO), as in vault-k8s, made
// safe for several replicas and for CA rotation:
// - one replica leads (a Lease, leader.ts) and keeps a CA and a short-lived
//   serving certificate in one Secret; every replica serves what the Secret
//   holds, so they all present the same certificate;
// - the serving certificate is renewed when a third of its life is left, the
//   CA when a twelfth of its life is left;
// - the leader writes the caBundle of EVERY webhook entry of the
//   configuration, and keeps the previous CA in it after a CA rotation;
// - order of writes, so no admission fails mid-rotation: a new CA is stored
//   in the Secret first (a conflict there means another leader got in first,
//   and we stop), then put in every caBundle, and only then used to sign the
//   serving certificate the replicas pick up;
// - what the Secret holds is checked before it is kept: a CA that is not a
//   CA or whose key is not its own, a serving certificate that is expired or
//   near its end, not signed by the CA, not naming the Service, or not
//   matching its key is replaced by the leader (the reason is logged, never a
//   key), and no replica serves a pair whose key does not match.
import type { X509Certificate } from 'node:crypto'
import type { Logger } from '../../log.ts'
import { generateCA, generateServingCert, type CertificateAuthority } from '../../tls/ca.ts'
import type { CertPair, CertSource } from '../../tls/source.ts'
import { apiErrorText } from '../client.ts'
import { realTimers, type Timers } from '../leader.ts'
import { SECRET_NAME } from '../names.ts'
import { b64, bundleCerts, caProblem, keyMatches, leafProblem, newestValid, notAfterMs, notBeforeMs, parseCert, unb64 } from './certificates.ts'
import { SECRET_KEYS, type SecretData, type SecretStore, type WebhookStore } from './stores.ts'

const DAY_MS = 24 * 3_600_000
const KEYS = SECRET_KEYS

export interface AutoTlsOptions {
  secrets: SecretStore
  webhooks: WebhookStore
  webhookName: string
  hosts: string[]
  logger: Logger
  now?: () => number
  timers?: Timers
  caValidityMs?: number
  servingValidityMs?: number
  // Every replica reads the Secret this often.
  refreshIntervalMs?: number
  // The leader re-checks everything this often, besides watch events.
  reconcileIntervalMs?: number
  // After a failed reconcile, the leader tries again this soon.
  retryIntervalMs?: number
  // After putting a new CA in the caBundle, how long the leader waits before
  // serving a certificate it signed, while the current one is still good: the
  // API servers pick the new bundle up from their own watch, not at once.
  trustDelayMs?: number
}

export class AutoTls implements CertSource {
  readonly #secrets: SecretStore
  readonly #webhooks: WebhookStore
  readonly #webhookName: string
  readonly #hosts: string[]
  readonly #logger: Logger
  readonly #now: () => number
  readonly #timers: Timers
  readonly #caValidityMs: number
  readonly #servingValidityMs: number
  readonly #refreshIntervalMs: number
  readonly #reconcileIntervalMs: number
  readonly #retryIntervalMs: number
  readonly #trustDelayMs: number

  #pair: CertPair | undefined
  #listeners: ((pair: CertPair) => void)[] = []
  #readyResolve!: (pair: CertPair) => void
  #ready = new Promise<CertPair>((resolve) => (this.#readyResolve = resolve))
  #timerHandles = new Set<unknown>()
  #watch: { stop(): Promise<void> } | undefined
  #leading = false
  #closed = false
  // Reconciles run one at a time; #queued is one waiting to start, which later requests join.
  #queue: Promise<unknown> = Promise.resolve()
  #queued: Promise<void> | undefined
  #retryPending = false
  // The last certificate of the Secret refused for serving (its warning is logged once).
  #refused: string | undefined

  constructor(options: AutoTlsOptions) {
    if (options.hosts.length === 0) throw new Error('auto-TLS needs at least one host name for the serving certificate')
    this.#secrets = options.secrets
    this.#webhooks = options.webhooks
    this.#webhookName = options.webhookName
    this.#hosts = options.hosts
    this.#logger = options.logger
    this.#now = options.now ?? (() => Date.now())
    this.#timers = options.timers ?? realTimers
    this.#caValidityMs = options.caValidityMs ?? 365 * DAY_MS
    this.#servingValidityMs = options.servingValidityMs ?? DAY_MS
    this.#refreshIntervalMs = options.refreshIntervalMs ?? 10_000
    this.#reconcileIntervalMs = options.reconcileIntervalMs ?? 60_000
    this.#retryIntervalMs = options.retryIntervalMs ?? 5_000
    this.#trustDelayMs = options.trustDelayMs ?? 10_000
  }

  get leading(): boolean {
    return this.#leading
  }

  ready(): Promise<CertPair> {
    return this.#ready
  }

  current(): CertPair | undefined {
    return this.#pair
  }

  onChange(listener: (pair: CertPair) => void): void {
    this.#listeners.push(listener)
  }

  // Background work: every replica reads the Secret; the leader reconciles.
  start(): void {
    this.#every(this.#refreshIntervalMs, () =>
      this.refresh().catch((error: unknown) => this.#logger.warn({ secret: SECRET_NAME, err: apiErrorText(error) }, 'auto-tls: could not read the certificate Secret')),
    )
    this.#every(this.#reconcileIntervalMs, async () => {
      if (this.#leading) await this.#requestReconcile()
    })
  }

  // Until the first certificate is in, the Secret is read every second, so a
  // follower is ready moments after the leader has stored it.
  #every(intervalMs: number, work: () => Promise<unknown>): void {
    const run = (): void => {
      void work().finally(() => this.#after(this.#pair ? intervalMs : Math.min(intervalMs, 1_000), run))
    }
    run()
  }

  #after(ms: number, fn: () => void): void {
    if (this.#closed) return
    const handle = this.#timers.setTimeout(() => {
      this.#timerHandles.delete(handle)
      fn()
    }, ms)
    this.#timerHandles.add(handle)
  }

  // Leadership changes come from the elector (or are fixed at true for a single replica).
  setLeading(leading: boolean): Promise<void> {
    this.#leading = leading
    if (!leading) {
      void this.#watch?.stop()
      this.#watch = undefined
      return Promise.resolve()
    }
    // Someone editing the configuration (a re-apply, a recreate) gets its caBundle back at once.
    if (!this.#watch && this.#webhooks.watch && !this.#closed) this.#watch = this.#webhooks.watch(() => void this.#requestReconcile())
    return this.#requestReconcile()
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const handle of this.#timerHandles) this.#timers.clearTimeout(handle)
    this.#timerHandles.clear()
    await this.#watch?.stop()
    this.#watch = undefined
  }

  // Serve what the Secret holds (every replica, every refresh interval).
  async refresh(): Promise<void> {
    const secret = await this.#secrets.read()
    if (secret) this.#serveFrom(secret.data)
  }

  #serveFrom(data: SecretData): void {
    const certPem = unb64(data[KEYS.cert])
    const keyPem = unb64(data[KEYS.key])
    const caPem = unb64(data[KEYS.ca])
    if (!certPem || !keyPem || certPem === this.#pair?.certPem) return
    const cert = parseCert(certPem)
    // What would break every handshake; dates and names are the leader's to judge.
    const why = !cert ? 'the serving certificate does not parse' : !keyMatches(cert, keyPem) ? 'the serving key does not belong to the serving certificate' : undefined
    if (why) {
      if (this.#refused !== certPem) this.#logger.warn({ secret: SECRET_NAME, reason: why }, 'auto-tls: not serving the certificate in the Secret; the leader replaces it')
      this.#refused = certPem
      return
    }
    const pair: CertPair = { certPem, keyPem, ...(caPem ? { caPem } : {}) }
    const first = this.#pair === undefined
    this.#pair = pair
    if (first) this.#readyResolve(pair)
    else for (const listener of this.#listeners) listener(pair)
  }

  // One reconcile now, after any in progress; errors reach the caller.
  reconcile(): Promise<void> {
    const run = this.#queue.then(() => this.#reconcileOnce())
    this.#queue = run.catch(() => {})
    return run
  }

  // A reconcile soon (joining one already waiting); a failure is logged and retried.
  #requestReconcile(): Promise<void> {
    if (this.#queued) return this.#queued
    const run = this.#queue.then(async () => {
      this.#queued = undefined
      if (!this.#leading || this.#closed) return
      try {
        await this.#reconcileOnce()
      } catch (error) {
        this.#logger.warn({ webhook: this.#webhookName, err: apiErrorText(error), retryInMs: this.#retryIntervalMs }, 'auto-tls: reconcile failed')
        if (!this.#retryPending) {
          this.#retryPending = true
          this.#after(this.#retryIntervalMs, () => {
            this.#retryPending = false
            void this.#requestReconcile()
          })
        }
      }
    })
    this.#queued = run
    this.#queue = run
    return run
  }

  // The leader's job: a valid CA and serving certificate in the Secret, and
  // the CA (with the previous one) in every webhook entry.
  async #reconcileOnce(): Promise<void> {
    const nowMs = this.#now()
    const secret = await this.#secrets.read()
    let resourceVersion = secret?.resourceVersion
    const data: SecretData = { ...(secret?.data ?? {}) }
    const config = await this.#webhooks.read()
    if (!config) this.#logger.warn({ webhook: this.#webhookName }, 'auto-tls: MutatingWebhookConfiguration not found; its caBundle will be set once it exists')
    const trusted = bundleCerts((config?.caBundles ?? []).map((bundle) => unb64(bundle) ?? '').join('\n'))

    // 1. A CA with time left, stored before anything trusts or uses it.
    const stored = this.#currentCa(data)
    const caWhy = caProblem(unb64(data[KEYS.ca]), unb64(data[KEYS.caKey]), nowMs, Math.max(this.#caValidityMs / 12, 2 * this.#servingValidityMs))
    let ca = caWhy ? undefined : stored
    if (!ca) {
      // The CA replaced stays trusted: replicas may still serve certificates it
      // signed. With no usable CA in the Secret (first start, the Secret was
      // deleted, or it holds no CA), that is the newest CA the webhook trusts
      // now, if any.
      const previous = stored?.cert.ca ? stored.cert : newestValid(trusted, nowMs)
      const made = generateCA({ commonName: `vault-injector CA ${new Date(nowMs).toISOString()}`, validityMs: this.#caValidityMs })
      data[KEYS.ca] = b64(made.certPem)
      data[KEYS.caKey] = b64(made.keyPem)
      if (previous) data[KEYS.previousCa] = b64(previous.toString())
      else delete data[KEYS.previousCa]
      resourceVersion = await this.#secrets.write(data, resourceVersion)
      ca = this.#currentCa(data)!
      this.#logger.info({ reason: caWhy, notAfter: made.notAfter.toISOString(), fingerprint: ca.cert.fingerprint256 }, 'auto-tls: new CA stored')
    }
    let dirty = false
    let previous = parseCert(unb64(data[KEYS.previousCa]))
    if (data[KEYS.previousCa] && (!previous || notAfterMs(previous) <= nowMs)) {
      delete data[KEYS.previousCa]
      previous = undefined
      dirty = true
    }

    // 2. Every entry trusts the CA and the previous one. An unexpired CA
    // already there that is not older than ours stays too: only a leader a
    // moment ahead of us (our view of the Secret is stale) can have put it there.
    if (config) {
      const bundle = [ca.cert, ...(previous ? [previous] : [])]
      for (const cert of trusted) {
        const newer = notBeforeMs(cert) >= notBeforeMs(ca.cert) && notAfterMs(cert) > nowMs
        if (newer && !bundle.some((c) => c.fingerprint256 === cert.fingerprint256)) bundle.push(cert)
      }
      await this.#syncCaBundle(config, bundle.map((c) => c.toString()).join(''))
    }

    // 3. The serving certificate, signed by a CA the webhook now trusts. If
    // that CA has only just been added to the bundle and the current
    // certificate is still good, wait a little for the API servers to see it.
    const justTrusted = config !== undefined && config.caBundles.length > 0 && !trusted.some((c) => c.fingerprint256 === ca.cert.fingerprint256)
    const leafWhy = this.#leafProblem(data, [ca.cert], nowMs, this.#servingValidityMs / 3)
    // Good for a while yet (twice the wait), signed by a CA the webhook trusted before.
    const stillGood = this.#leafProblem(data, [ca.cert, ...(previous ? [previous] : [])], nowMs, 2 * this.#trustDelayMs) === undefined
    if (leafWhy && justTrusted && stillGood) {
      this.#logger.info({ waitMs: this.#trustDelayMs }, 'auto-tls: new CA in the caBundle; the serving certificate it signs follows shortly')
      this.#after(this.#trustDelayMs, () => void this.#requestReconcile())
    } else if (leafWhy) {
      const leaf = generateServingCert({ ca, hosts: this.#hosts, validityMs: this.#servingValidityMs })
      data[KEYS.cert] = b64(leaf.certPem)
      data[KEYS.key] = b64(leaf.keyPem)
      dirty = true
      this.#logger.info({ reason: leafWhy, notAfter: leaf.notAfter.toISOString(), hosts: this.#hosts }, 'auto-tls: new serving certificate')
    }
    if (dirty) await this.#secrets.write(data, resourceVersion)
    this.#serveFrom(data)
  }

  #currentCa(data: SecretData): (CertificateAuthority & { cert: X509Certificate }) | undefined {
    const certPem = unb64(data[KEYS.ca])
    const keyPem = unb64(data[KEYS.caKey])
    const cert = parseCert(certPem)
    if (!certPem || !keyPem || !cert) return undefined
    return { certPem, keyPem, notAfter: new Date(notAfterMs(cert)), cert }
  }

  #leafProblem(data: SecretData, cas: X509Certificate[], nowMs: number, renewBeforeMs: number): string | undefined {
    return leafProblem(unb64(data[KEYS.cert]), unb64(data[KEYS.key]), cas, this.#hosts, nowMs, renewBeforeMs)
  }

  async #syncCaBundle(config: { resourceVersion: string; caBundles: (string | undefined)[] }, bundlePem: string): Promise<void> {
    const wanted = b64(bundlePem)
    if (config.caBundles.length === 0 || config.caBundles.every((bundle) => bundle === wanted)) return
    await this.#webhooks.setCaBundle(config.resourceVersion, config.caBundles.length, wanted)
    this.#logger.info({ webhook: this.#webhookName, entries: config.caBundles.length, cas: bundleCerts(bundlePem).length }, 'auto-tls: caBundle updated')
  }
}
