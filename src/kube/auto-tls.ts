// Auto-TLS (AGENT_INJECT_TLS_AUTO=<MutatingWebhookConfiguration name>), as in
// vault-k8s, made safe for several replicas and for CA rotation:
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
//   serving certificate the replicas pick up.
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  ListWatch,
  setHeaderOptions,
  Watch,
  type KubeConfig,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node'
import { X509Certificate } from 'node:crypto'
import type { Settings } from '../engine/settings.ts'
import { generateCA, generateServingCert, type CertificateAuthority } from '../tls/ca.ts'
import type { Logger } from '../tls/files.ts'
import type { CertPair, CertSource } from '../tls/source.ts'
import { apiErrorText, isNotFound, loadKubeConfig } from './client.ts'
import { LEASE_NAME, SECRET_NAME } from './names.ts'
import { defaultIdentity, LeaderElector, leaseStore, realTimers, type Timers } from './leader.ts'

const DAY_MS = 24 * 3_600_000
export { LEASE_NAME, SECRET_NAME }

// Secret keys: the served pair, the CA that signs it (and its key), and the CA before it.
export const SECRET_KEYS = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt', caKey: 'ca.key', previousCa: 'ca-previous.crt' } as const
const KEYS = SECRET_KEYS
export type SecretData = Partial<Record<(typeof KEYS)[keyof typeof KEYS], string>>

export interface SecretStore {
  read(): Promise<{ data: SecretData; resourceVersion?: string } | undefined>
  // Creates the Secret when resourceVersion is undefined, else replaces that
  // version; a conflict (someone wrote in between) throws. Returns the new version.
  write(data: SecretData, resourceVersion?: string): Promise<string | undefined>
}

export interface WebhookStore {
  // Every webhook entry's caBundle (base64 PEM), in order.
  read(): Promise<{ resourceVersion: string; caBundles: (string | undefined)[] } | undefined>
  // Sets every entry's caBundle, only if the configuration is still at resourceVersion with count entries.
  setCaBundle(resourceVersion: string, count: number, caBundleB64: string): Promise<void>
  // Calls onChange whenever the configuration is created, changed or deleted.
  watch?(onChange: () => void): { stop(): Promise<void> }
}

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

const b64 = (text: string): string => Buffer.from(text).toString('base64')
const unb64 = (text: string | undefined): string | undefined => (text === undefined ? undefined : Buffer.from(text, 'base64').toString('utf8'))

function parseCert(pem: string | undefined): X509Certificate | undefined {
  if (!pem) return undefined
  try {
    return new X509Certificate(pem)
  } catch {
    return undefined
  }
}

const notAfterMs = (cert: X509Certificate | undefined): number => (cert ? new Date(cert.validTo).getTime() : 0)
const notBeforeMs = (cert: X509Certificate): number => new Date(cert.validFrom).getTime()

// The certificates of a PEM bundle, in order, each once.
export function bundleCerts(pem: string | undefined): X509Certificate[] {
  const out: X509Certificate[] = []
  for (const block of pem?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
    const cert = parseCert(block)
    if (cert && !out.some((c) => c.fingerprint256 === cert.fingerprint256)) out.push(cert)
  }
  return out
}

function signedBy(certPem: string, ca: X509Certificate): boolean {
  try {
    return new X509Certificate(certPem).verify(ca.publicKey)
  } catch {
    return false
  }
}

function coversHosts(certPem: string, hosts: string[]): boolean {
  const cert = parseCert(certPem)
  if (!cert) return false
  return hosts.every((h) => (/^[\d.]+$|:/.test(h) ? cert.checkIP(h) : cert.checkHost(h, { wildcards: false })) !== undefined)
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
    let ca = this.#currentCa(data)
    if (!ca || notAfterMs(ca.cert) - nowMs < Math.max(this.#caValidityMs / 12, 2 * this.#servingValidityMs)) {
      // The CA replaced stays trusted: replicas may still serve certificates it
      // signed. With no CA in the Secret (first start, or the Secret was
      // deleted), that is the newest CA the webhook trusts now, if any.
      const previous = ca?.cert ?? newestValid(trusted, nowMs)
      const made = generateCA({ commonName: `vault-injector CA ${new Date(nowMs).toISOString()}`, validityMs: this.#caValidityMs })
      data[KEYS.ca] = b64(made.certPem)
      data[KEYS.caKey] = b64(made.keyPem)
      if (previous) data[KEYS.previousCa] = b64(previous.toString())
      else delete data[KEYS.previousCa]
      resourceVersion = await this.#secrets.write(data, resourceVersion)
      ca = this.#currentCa(data)!
      this.#logger.info({ notAfter: made.notAfter.toISOString(), fingerprint: ca.cert.fingerprint256 }, 'auto-tls: new CA stored')
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
    const needsLeaf = this.#needsNewLeaf(data, ca.cert, nowMs)
    if (needsLeaf && justTrusted && this.#leafStillGood(data, [ca.cert, ...(previous ? [previous] : [])], nowMs)) {
      this.#logger.info({ waitMs: this.#trustDelayMs }, 'auto-tls: new CA in the caBundle; the serving certificate it signs follows shortly')
      this.#after(this.#trustDelayMs, () => void this.#requestReconcile())
    } else if (needsLeaf) {
      const leaf = generateServingCert({ ca, hosts: this.#hosts, validityMs: this.#servingValidityMs })
      data[KEYS.cert] = b64(leaf.certPem)
      data[KEYS.key] = b64(leaf.keyPem)
      dirty = true
      this.#logger.info({ notAfter: leaf.notAfter.toISOString(), hosts: this.#hosts }, 'auto-tls: new serving certificate')
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

  #needsNewLeaf(data: SecretData, ca: X509Certificate, nowMs: number): boolean {
    const certPem = unb64(data[KEYS.cert])
    if (!certPem || !data[KEYS.key]) return true
    const remainingMs = notAfterMs(parseCert(certPem)) - nowMs
    return remainingMs < this.#servingValidityMs / 3 || !signedBy(certPem, ca) || !coversHosts(certPem, this.#hosts)
  }

  // Unexpired for a while yet, and signed by one of the trusted CAs.
  #leafStillGood(data: SecretData, cas: X509Certificate[], nowMs: number): boolean {
    const certPem = unb64(data[KEYS.cert])
    if (!certPem || !data[KEYS.key]) return false
    return notAfterMs(parseCert(certPem)) - nowMs > 2 * this.#trustDelayMs && cas.some((ca) => signedBy(certPem, ca))
  }

  async #syncCaBundle(config: { resourceVersion: string; caBundles: (string | undefined)[] }, bundlePem: string): Promise<void> {
    const wanted = b64(bundlePem)
    if (config.caBundles.length === 0 || config.caBundles.every((bundle) => bundle === wanted)) return
    await this.#webhooks.setCaBundle(config.resourceVersion, config.caBundles.length, wanted)
    this.#logger.info({ webhook: this.#webhookName, entries: config.caBundles.length, cas: bundleCerts(bundlePem).length }, 'auto-tls: caBundle updated')
  }
}

function newestValid(certs: X509Certificate[], nowMs: number): X509Certificate | undefined {
  const valid = certs.filter((c) => c.ca && notAfterMs(c) > nowMs)
  return valid.sort((a, b) => notBeforeMs(b) - notBeforeMs(a))[0]
}

export function secretStore(kc: KubeConfig, namespace: string, name = SECRET_NAME): SecretStore {
  const api = kc.makeApiClient(CoreV1Api)
  return {
    async read() {
      try {
        const secret = await api.readNamespacedSecret({ name, namespace })
        return { data: (secret.data ?? {}) as SecretData, ...(secret.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}) }
      } catch (error) {
        if (isNotFound(error)) return undefined
        throw error
      }
    },
    async write(data, resourceVersion) {
      const metadata = { name, namespace, labels: { 'app.kubernetes.io/name': 'vault-injector', 'app.kubernetes.io/component': 'auto-tls' }, ...(resourceVersion ? { resourceVersion } : {}) }
      const body = { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata, data }
      const written = resourceVersion ? await api.replaceNamespacedSecret({ name, namespace, body }) : await api.createNamespacedSecret({ namespace, body })
      return written.metadata?.resourceVersion
    },
  }
}

const MWC_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations'

export function webhookStore(kc: KubeConfig, name: string, logger?: Logger): WebhookStore {
  const api = kc.makeApiClient(AdmissionregistrationV1Api)
  return {
    async read() {
      try {
        const config = await api.readMutatingWebhookConfiguration({ name })
        return { resourceVersion: config.metadata?.resourceVersion ?? '', caBundles: (config.webhooks ?? []).map((w) => w.clientConfig.caBundle) }
      } catch (error) {
        if (isNotFound(error)) return undefined
        throw error
      }
    },
    async setCaBundle(resourceVersion, count, caBundle) {
      // A JSON Patch guarded by what was read: the test ops fail it if the
      // configuration changed since (another writer, an entry added or removed).
      const body = [
        { op: 'test', path: '/metadata/resourceVersion', value: resourceVersion },
        ...Array.from({ length: count }, (_, i) => ({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle })),
      ]
      await api.patchMutatingWebhookConfiguration({ name, body }, setHeaderOptions('Content-Type', 'application/json-patch+json'))
    },
    // A list+watch of this one object (a metadata.name field selector, which
    // RBAC's resourceNames allows), restarted after errors.
    watch(onChange) {
      const fieldSelector = `metadata.name=${name}`
      const informer = new ListWatch<V1MutatingWebhookConfiguration>(MWC_PATH, new Watch(kc), () => api.listMutatingWebhookConfiguration({ fieldSelector }), false, undefined, fieldSelector)
      let stopped = false
      let retry: NodeJS.Timeout | undefined
      informer.on('change', () => onChange())
      informer.on('error', (error: unknown) => {
        if (stopped) return
        logger?.warn({ webhook: name, err: apiErrorText(error) }, 'auto-tls: webhook configuration watch failed; retrying in 5 s')
        retry = setTimeout(() => void informer.start().catch(() => {}), 5_000).unref()
      })
      void informer.start().catch(() => {})
      return {
        async stop() {
          stopped = true
          clearTimeout(retry)
          await informer.stop()
        },
      }
    },
  }
}

export function defaultHosts(namespace: string, service = 'vault-injector'): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`]
}

export function autoTlsHosts(settings: Pick<Settings, 'tlsAutoHosts' | 'namespace'>): string[] {
  const listed = settings.tlsAutoHosts
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean)
  return listed.length > 0 ? listed : defaultHosts(settings.namespace)
}

// What `serve` uses when AGENT_INJECT_TLS_AUTO is set.
export function createAutoTlsSource(settings: Settings, logger: Logger): CertSource {
  const kc = loadKubeConfig()
  const tls = new AutoTls({
    secrets: secretStore(kc, settings.namespace),
    webhooks: webhookStore(kc, settings.tlsAuto, logger),
    webhookName: settings.tlsAuto,
    hosts: autoTlsHosts(settings),
    logger,
  })
  tls.start()
  if (!settings.useLeaderElector) {
    // One replica: it is the leader. (Several replicas without the elector
    // still converge, as every write is guarded by resourceVersion, but they
    // race each other; set AGENT_INJECT_USE_LEADER_ELECTOR=true.)
    void tls.setLeading(true)
    return tls
  }
  const elector = new LeaderElector({
    store: leaseStore(kc, settings.namespace, LEASE_NAME),
    namespace: settings.namespace,
    name: LEASE_NAME,
    identity: defaultIdentity(settings.podName),
    logger,
    onChange: (leading) => void tls.setLeading(leading),
  })
  elector.start()
  return {
    ready: () => tls.ready(),
    current: () => tls.current(),
    onChange: (listener) => tls.onChange(listener),
    async close() {
      await elector.stop()
      await tls.close()
    },
  }
}
