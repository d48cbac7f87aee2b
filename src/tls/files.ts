// Serving certificate from files (cert-manager, a mounted Secret, or the
// embedded default). The files are polled, as vault-k8s does every 250 ms:
// Kubernetes updates a mounted Secret by swapping a `..data` symlink, which
// inotify-based watchers miss. A pair that does not load keeps the last good
// one in force.
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import type { CertPair, CertSource } from './source.ts'

export interface Logger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

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

  // Loads the pair if the files changed since the last look.
  #poll(): CertPair | undefined {
    const seen = fingerprint(this.#files())
    if (seen === this.#seen) return undefined
    this.#seen = seen
    try {
      const pair = loadPair(this.#options.certFile, this.#options.keyFile, this.#options.caFile)
      const changed = this.#pair !== undefined && pair.certPem !== this.#pair.certPem
      this.#pair = pair
      const serial = new X509Certificate(pair.certPem).serialNumber
      this.#options.logger.info({ certFile: this.#options.certFile, serial }, changed ? 'serving certificate reloaded' : 'serving certificate loaded')
      return changed ? pair : undefined
    } catch (error) {
      // Half-written files are common mid-rotation: look again next time.
      this.#seen = ''
      this.#options.logger.warn({ err: (error as Error).message, certFile: this.#options.certFile }, this.#pair ? 'new serving certificate not loaded; keeping the current one' : 'serving certificate not loadable yet')
      return undefined
    }
  }

  #waitFirst(): Promise<CertPair> {
    return new Promise((resolve) => {
      const tick = (): void => {
        const changed = this.#poll()
        if (changed) for (const listener of this.#listeners) listener(changed)
      }
      this.#poll()
      if (this.#pair) resolve(this.#pair)
      this.#timer = setInterval(() => {
        const hadPair = this.#pair !== undefined
        tick()
        if (!hadPair && this.#pair) resolve(this.#pair)
      }, this.#options.pollIntervalMs ?? 250)
      this.#timer.unref()
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
