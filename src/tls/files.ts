// Serving certificate from files (cert-manager, a mounted Secret, or the
// embedded default), polled every 250 ms as vault-k8s does (file-poll.ts); a
// pair that does not load keeps the last good one in force.
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { FilePoll } from '../file-poll.ts'
import type { Logger } from '../log.ts'
import type { CertPair, CertSource } from './source.ts'

export interface FileSourceOptions {
  certFile: string
  keyFile: string
  caFile?: string
  pollIntervalMs?: number
  logger: Logger
}

// A pair that loads but must not be served: the reason is also the metric's label.
export class RefusedPair extends Error {
  readonly reason: 'expired' | 'not_yet_valid' | 'key_mismatch'
  constructor(reason: RefusedPair['reason'], message: string) {
    super(message)
    this.reason = reason
  }
}

// Checks that the files hold a certificate, valid now, and its private key.
export function loadPair(certFile: string, keyFile: string, caFile?: string, now = Date.now()): CertPair {
  const certPem = readFileSync(certFile, 'utf8')
  const keyPem = readFileSync(keyFile, 'utf8')
  const cert = new X509Certificate(certPem)
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new RefusedPair('key_mismatch', `the key in ${keyFile} does not belong to the certificate in ${certFile}`)
  const notBefore = new Date(cert.validFrom).getTime()
  const notAfter = new Date(cert.validTo).getTime()
  if (now < notBefore) throw new RefusedPair('not_yet_valid', `the certificate in ${certFile} is not valid before ${new Date(notBefore).toISOString()}`)
  if (now > notAfter) throw new RefusedPair('expired', `the certificate in ${certFile} expired at ${new Date(notAfter).toISOString()}`)
  return { certPem, keyPem, ...(caFile ? { caPem: readFileSync(caFile, 'utf8') } : {}) }
}

export class FileCertSource implements CertSource {
  readonly #options: FileSourceOptions
  readonly #file: FilePoll<CertPair>
  #listeners: ((pair: CertPair) => void)[] = []
  #rejectedListeners: ((reason: string) => void)[] = []
  #first: Promise<CertPair>

  constructor(options: FileSourceOptions) {
    this.#options = options
    const { certFile, keyFile, caFile, logger } = options
    this.#file = new FilePoll({
      files: caFile ? [certFile, keyFile, caFile] : [certFile, keyFile],
      load: () => loadPair(certFile, keyFile, caFile),
      onLoaded: (pair, previous) => {
        const changed = previous !== undefined && (pair.certPem !== previous.certPem || pair.keyPem !== previous.keyPem)
        if (previous !== undefined && !changed) return
        const cert = new X509Certificate(pair.certPem)
        const details = { certFile, serial: cert.serialNumber, notAfter: new Date(cert.validTo).toISOString() }
        logger.info(details, changed ? 'serving certificate reloaded' : 'serving certificate loaded')
        if (changed) this.#notify(pair)
      },
      onFailed: (error, current) => {
        const message = current ? 'new serving certificate not loaded; keeping the current one' : 'serving certificate not loadable yet'
        logger.warn({ err: error.message, certFile }, message)
        // Only a complete pair that is wrong counts as refused; a half-written one is just early.
        if (error instanceof RefusedPair) for (const listener of this.#rejectedListeners) listener(error.reason)
      },
    })
    this.#first = this.#waitFirst()
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
        this.#file.unref()
        resolve(pair)
      }
      this.#file.poll()
      let waiting = true
      this.#file.start(
        this.#options.pollIntervalMs ?? 250,
        () => {
          const pair = this.#file.current()
          if (waiting && pair) {
            waiting = false
            loaded(pair)
          }
        },
        true,
      )
      const pair = this.#file.current()
      if (pair) {
        waiting = false
        loaded(pair)
      }
    })
  }

  ready(): Promise<CertPair> {
    return this.#first
  }

  current(): CertPair | undefined {
    return this.#file.current()
  }

  onChange(listener: (pair: CertPair) => void): void {
    this.#listeners.push(listener)
  }

  onRejected(listener: (reason: string) => void): void {
    this.#rejectedListeners.push(listener)
  }

  // Read the files again now (SIGHUP). Before the first pair the regular
  // poll retries anyway (and resolves ready()).
  reload(): void {
    if (this.#file.current()) this.#file.pollNow()
  }

  async close(): Promise<void> {
    this.#file.stop()
  }
}
