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

// Checks that the files hold a certificate and its private key.
export function loadPair(certFile: string, keyFile: string, caFile?: string): CertPair {
  const certPem = readFileSync(certFile, 'utf8')
  const keyPem = readFileSync(keyFile, 'utf8')
  const cert = new X509Certificate(certPem)
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error(`the key in ${keyFile} does not belong to the certificate in ${certFile}`)
  return { certPem, keyPem, ...(caFile ? { caPem: readFileSync(caFile, 'utf8') } : {}) }
}

export class FileCertSource implements CertSource {
  readonly #options: FileSourceOptions
  readonly #file: FilePoll<CertPair>
  #listeners: ((pair: CertPair) => void)[] = []
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
        if (new Date(cert.validTo).getTime() < Date.now()) logger.warn(details, 'the serving certificate has expired; clients will refuse it')
        if (changed) this.#notify(pair)
      },
      onFailed: (error, current) => {
        const message = current ? 'new serving certificate not loaded; keeping the current one' : 'serving certificate not loadable yet'
        logger.warn({ err: error.message, certFile }, message)
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

  async close(): Promise<void> {
    this.#file.stop()
  }
}
