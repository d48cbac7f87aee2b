// Serving certificate from files (cert-manager, a mounted Secret, or the
// embedded default). The files are polled, as vault-k8s does every 250 ms:
// Kubernetes updates a mounted Secret by swapping a `..data` symlink, which
// inotify-based watchers miss. A pair that does not load keeps the last good
// one in force.
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import type { Logger } from '../log.ts'
import type { CertPair, CertSource } from './source.ts'

export interface FileSourceOptions {
  certFile: string
  keyFile: string
  caFile?: string
  pollIntervalMs?: number
  logger: Logger
}

// Checks that the files hold a certificate and its private key.
export function loadPair(certFile: string, keyFile: string, caFile?: string): CertPair {
  const certPem = readFileSync(certFile, 'utf8')
  const keyPem = readFileSync(keyFile, 'utf8')
  const cert = new X509Certificate(certPem)
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error(`the key in ${keyFile} does not belong to the certificate in ${certFile}`)
  return { certPem, keyPem, ...(caFile ? { caPem: readFileSync(caFile, 'utf8') } : {}) }
}

function fingerprint(files: string[]): string {
  return files
    .map((file) => {
      try {
        const s = statSync(file)
        return `${s.ino}:${s.size}:${s.mtimeMs}`
      } catch {
        return 'missing'
      }
    })
    .join('|')
}

export class FileCertSource implements CertSource {
  #options: FileSourceOptions
  #pair: CertPair | undefined
  #seen = ''
  // The files as they were when they last failed to load: logged once, retried on every poll.
  #failed = ''
  #listeners: ((pair: CertPair) => void)[] = []
  #timer: NodeJS.Timeout | undefined
  #first: Promise<CertPair>

  constructor(options: FileSourceOptions) {
    this.#options = options
    this.#first = this.#waitFirst()
  }

  #files(): string[] {
    const { certFile, keyFile, caFile } = this.#options
    return caFile ? [certFile, keyFile, caFile] : [certFile, keyFile]
  }

  // Loads the pair if the files changed since the last look; returns it when
  // it replaces an earlier, different pair.
  #poll(): CertPair | undefined {
    const seen = fingerprint(this.#files())
    if (seen === this.#seen) return undefined
    const { certFile, logger } = this.#options
    try {
      const pair = loadPair(certFile, this.#options.keyFile, this.#options.caFile)
      this.#seen = seen
      this.#failed = ''
      const changed = this.#pair !== undefined && (pair.certPem !== this.#pair.certPem || pair.keyPem !== this.#pair.keyPem)
      const first = this.#pair === undefined
      this.#pair = pair
      if (first || changed) {
        const cert = new X509Certificate(pair.certPem)
        const details = { certFile, serial: cert.serialNumber, notAfter: new Date(cert.validTo).toISOString() }
        logger.info(details, changed ? 'serving certificate reloaded' : 'serving certificate loaded')
        if (new Date(cert.validTo).getTime() < Date.now()) logger.warn(details, 'the serving certificate has expired; clients will refuse it')
      }
      return changed ? pair : undefined
    } catch (error) {
      // Half-written files are common mid-rotation: look again next poll, but
      // say so once per state of the files, not four times a second.
      if (this.#failed !== seen) {
        this.#failed = seen
        const message = this.#pair ? 'new serving certificate not loaded; keeping the current one' : 'serving certificate not loadable yet'
        logger.warn({ err: (error as Error).message, certFile }, message)
      }
      return undefined
    }
  }

  #notify(pair: CertPair): void {
    for (const listener of this.#listeners) {
      try {
        listener(pair)
      } catch (error) {
        // A listener that throws must not stop the polling timer or the process.
        this.#options.logger.error({ err: (error as Error).message }, 'serving certificate not applied; keeping the current one')
      }
    }
  }

  #waitFirst(): Promise<CertPair> {
    return new Promise((resolve) => {
      const loaded = (pair: CertPair): void => {
        // Until the first pair, the timer keeps the process alive (it has
        // nothing else to do); after it, polling must not hold up an exit.
        this.#timer?.unref()
        resolve(pair)
      }
      this.#poll()
      this.#timer = setInterval(() => {
        const hadPair = this.#pair !== undefined
        const changed = this.#poll()
        if (changed) this.#notify(changed)
        if (!hadPair && this.#pair) loaded(this.#pair)
      }, this.#options.pollIntervalMs ?? 250)
      if (this.#pair) loaded(this.#pair)
    })
  }

  ready(): Promise<CertPair> {
    return this.#first
  }

  current(): CertPair | undefined {
    return this.#pair
  }

  onChange(listener: (pair: CertPair) => void): void {
    this.#listeners.push(listener)
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
  }
}
