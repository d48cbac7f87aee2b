// Auto-TLS (AGENT_INJECT_TLS_AUTO=<MutatingWebhookConfiguration name>), as in
// vault-k8s, made safe for several replicas:
// - one replica leads (a Lease) and keeps a CA and a short-lived serving
//   certificate in a Secret, so every replica serves the same certificate;
// - the serving certificate is renewed when a third of its life is left;
// - the leader writes the caBundle of EVERY webhook entry of the
//   configuration, and keeps the previous CA in the bundle after a CA
//   rotation, so certificates signed by either verify and no admission fails
//   mid-rotation; the new CA reaches the bundle before any certificate it signs
//   is served.
import { AdmissionregistrationV1Api, CoreV1Api, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node'
import { X509Certificate } from 'node:crypto'
import type { Settings } from '../engine/settings.ts'
import { generateCA, generateServingCert, type CertificateAuthority } from '../tls/ca.ts'
import type { Logger } from '../tls/files.ts'
import type { CertPair, CertSource } from '../tls/source.ts'
import { apiErrorText, isNotFound, loadKubeConfig } from './client.ts'
import { LeaderElector, leaseStore } from './leader.ts'

const DAY_MS = 24 * 3_600_000
export const SECRET_NAME = 'vault-injector-certs'
export const LEASE_NAME = 'vault-injector-leader'

// Secret keys: the served pair, the CA that signs it, and the one before.
const KEYS = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt', caKey: 'ca.key', previousCa: 'ca-previous.crt' } as const
type SecretData = Partial<Record<(typeof KEYS)[keyof typeof KEYS], string>>

export interface SecretStore {
  read(): Promise<{ data: SecretData; resourceVersion?: string } | undefined>
  // Creates the Secret when resourceVersion is undefined; a conflict throws.
  write(data: SecretData, resourceVersion?: string): Promise<void>
}

export interface WebhookStore {
  // Every webhook entry's caBundle (base64 PEM), in order.
  read(): Promise<{ resourceVersion: string; caBundles: (string | undefined)[] } | undefined>
  setCaBundle(resourceVersion: string, count: number, caBundleB64: string): Promise<void>
}

export interface AutoTlsOptions {
  secrets: SecretStore
  webhooks: WebhookStore
  webhookName: string
  hosts: string[]
  logger: Logger
  now?: () => number
  caValidityMs?: number
  servingValidityMs?: number
  refreshIntervalMs?: number
  reconcileIntervalMs?: number
}

const b64 = (text: string): string => Buffer.from(text).toString('base64')
const unb64 = (text: string | undefined): string | undefined => (text === undefined ? undefined : Buffer.from(text, 'base64').toString('utf8'))

function notAfterMs(pem: string | undefined): number {
  if (!pem) return 0
  try {
    return new Date(new X509Certificate(pem).validTo).getTime()
  } catch {
    return 0
  }
}

function signedBy(certPem: string, caPem: string): boolean {
  try {
    return new X509Certificate(certPem).verify(new X509Certificate(caPem).publicKey)
  } catch {
    return false
  }
}

function coversHosts(certPem: string, hosts: string[]): boolean {
  try {
    const cert = new X509Certificate(certPem)
    return hosts.every((h) => (/^[\d.]+$|:/.test(h) ? cert.checkIP(h) : cert.checkHost(h)) !== undefined)
  } catch {
    return false
  }
}

export class AutoTls implements CertSource {
  #o: Required<AutoTlsOptions>
  #pair: CertPair | undefined
  #listeners: ((pair: CertPair) => void)[] = []
  #readyResolve!: (pair: CertPair) => void
  #ready = new Promise<CertPair>((resolve) => (this.#readyResolve = resolve))
  #timers: NodeJS.Timeout[] = []
  leading = false

  constructor(options: AutoTlsOptions) {
    this.#o = {
      now: () => Date.now(),
      caValidityMs: 365 * DAY_MS,
      servingValidityMs: DAY_MS,
      refreshIntervalMs: 10_000,
      reconcileIntervalMs: 60_000,
      ...options,
    }
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

  // Periodic work: every replica refreshes from the Secret; the leader also reconciles.
  start(): void {
    const every = (ms: number, work: () => Promise<void>): void => {
      const run = (): void => void work().catch((error) => this.#o.logger.warn({ err: apiErrorText(error) }, 'auto-tls step failed'))
      run()
      this.#timers.push(setInterval(run, ms).unref())
    }
    every(this.#o.refreshIntervalMs, () => this.refresh())
    every(this.#o.reconcileIntervalMs, async () => {
      if (this.leading) await this.reconcile()
    })
  }

  async setLeading(leading: boolean): Promise<void> {
    this.leading = leading
    if (leading) await this.reconcile().catch((error) => this.#o.logger.warn({ err: apiErrorText(error) }, 'auto-tls reconcile failed'))
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer)
  }

  // Serve what the Secret holds.
  async refresh(): Promise<void> {
    const secret = await this.#o.secrets.read()
    const certPem = unb64(secret?.data[KEYS.cert])
    const keyPem = unb64(secret?.data[KEYS.key])
    const caPem = unb64(secret?.data[KEYS.ca])
    if (!certPem || !keyPem || certPem === this.#pair?.certPem) return
    this.#serve({ certPem, keyPem, ...(caPem ? { caPem } : {}) })
  }

  #serve(pair: CertPair): void {
    const first = this.#pair === undefined
    this.#pair = pair
    if (first) this.#readyResolve(pair)
    else for (const listener of this.#listeners) listener(pair)
  }

  // The leader's job: a valid CA and serving certificate in the Secret, and
  // the CA bundle in every webhook entry.
  async reconcile(): Promise<void> {
    const now = this.#o.now()
    const secret = await this.#o.secrets.read()
    const data: SecretData = { ...(secret?.data ?? {}) }
    let ca = this.#currentCa(data)
    let changed = false
    if (!ca || notAfterMs(ca.certPem) - now < this.#o.caValidityMs / 12) {
      if (ca) data[KEYS.previousCa] = b64(ca.certPem)
      ca = generateCA({ commonName: `vault-injector CA ${new Date(now).toISOString()}`, validityMs: this.#o.caValidityMs })
      data[KEYS.ca] = b64(ca.certPem)
      data[KEYS.caKey] = b64(ca.keyPem)
      this.#o.logger.info({ notAfter: ca.notAfter.toISOString() }, 'auto-tls: new CA')
      changed = true
    }
    const previous = unb64(data[KEYS.previousCa])
    if (previous && notAfterMs(previous) < now) {
      delete data[KEYS.previousCa]
      changed = true
    }
    // The bundle first: the API server must trust a CA before anything it signed is served.
    await this.#syncCaBundle(ca.certPem + (data[KEYS.previousCa] ? unb64(data[KEYS.previousCa]) : ''))
    if (this.#needsNewLeaf(data, ca, now)) {
      const leaf = generateServingCert({ ca, hosts: this.#o.hosts, validityMs: this.#o.servingValidityMs })
      data[KEYS.cert] = b64(leaf.certPem)
      data[KEYS.key] = b64(leaf.keyPem)
      this.#o.logger.info({ notAfter: leaf.notAfter.toISOString(), hosts: this.#o.hosts }, 'auto-tls: new serving certificate')
      changed = true
    }
    if (changed) await this.#o.secrets.write(data, secret?.resourceVersion)
    await this.refresh()
  }

  #currentCa(data: SecretData): CertificateAuthority | undefined {
    const certPem = unb64(data[KEYS.ca])
    const keyPem = unb64(data[KEYS.caKey])
    if (!certPem || !keyPem) return undefined
    return { certPem, keyPem, notAfter: new Date(notAfterMs(certPem)) }
  }

  #needsNewLeaf(data: SecretData, ca: CertificateAuthority, now: number): boolean {
    const certPem = unb64(data[KEYS.cert])
    if (!certPem || !data[KEYS.key]) return true
    const remaining = notAfterMs(certPem) - now
    return remaining < this.#o.servingValidityMs / 3 || !signedBy(certPem, ca.certPem) || !coversHosts(certPem, this.#o.hosts)
  }

  async #syncCaBundle(bundlePem: string): Promise<void> {
    const config = await this.#o.webhooks.read()
    if (!config) {
      this.#o.logger.warn({ webhook: this.#o.webhookName }, 'auto-tls: MutatingWebhookConfiguration not found; caBundle not set')
      return
    }
    const wanted = b64(bundlePem)
    if (config.caBundles.every((bundle) => bundle === wanted)) return
    await this.#o.webhooks.setCaBundle(config.resourceVersion, config.caBundles.length, wanted)
    this.#o.logger.info({ webhook: this.#o.webhookName, entries: config.caBundles.length }, 'auto-tls: caBundle updated')
  }
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
      const body = { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name, namespace, labels: { 'app.kubernetes.io/name': 'vault-injector' }, ...(resourceVersion ? { resourceVersion } : {}) }, data }
      if (resourceVersion) await api.replaceNamespacedSecret({ name, namespace, body })
      else await api.createNamespacedSecret({ namespace, body })
    },
  }
}

export function webhookStore(kc: KubeConfig, name: string): WebhookStore {
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
      // A JSON Patch guarded by the resourceVersion read: a concurrent edit fails it.
      const body = [
        { op: 'test', path: '/metadata/resourceVersion', value: resourceVersion },
        ...Array.from({ length: count }, (_, i) => ({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle })),
      ]
      await api.patchMutatingWebhookConfiguration({ name, body }, setHeaderOptions('Content-Type', 'application/json-patch+json'))
    },
  }
}

export function defaultHosts(namespace: string, service = 'vault-injector'): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`]
}

// What `serve` uses when AGENT_INJECT_TLS_AUTO is set.
export function createAutoTlsSource(settings: Settings, logger: Logger): CertSource {
  const kc = loadKubeConfig()
  const hosts = settings.tlsAutoHosts ? settings.tlsAutoHosts.split(',').map((h) => h.trim()).filter(Boolean) : defaultHosts(settings.namespace)
  const tls = new AutoTls({ secrets: secretStore(kc, settings.namespace), webhooks: webhookStore(kc, settings.tlsAuto), webhookName: settings.tlsAuto, hosts, logger })
  tls.start()
  if (!settings.useLeaderElector) {
    void tls.setLeading(true)
    return tls
  }
  const identity = settings.podName || `vault-injector-${process.pid}`
  const elector = new LeaderElector({
    store: leaseStore(kc, settings.namespace, LEASE_NAME),
    namespace: settings.namespace,
    name: LEASE_NAME,
    identity,
    logger,
    onChange: (leading) => void tls.setLeading(leading),
  })
  elector.start()
  const close = tls.close.bind(tls)
  tls.close = async () => {
    await elector.stop()
    await close()
  }
  return tls
}
