// Poll files and keep the last good version: serving certificates and the
// policy file both use it. Files are polled rather than watched: Kubernetes
// updates a mounted Secret or ConfigMap by swapping a `..data` symlink, which
// inotify-based watchers miss (vault-k8s polls too). A version that does not
// load is reported once per state of the files and the last good one stays.
import { statSync } from 'node:fs'

export interface FilePollOptions<T> {
  files: readonly string[]
  load: () => T
  // A new version loaded; previous is undefined the first time.
  onLoaded?: (value: T, previous: T | undefined) => void
  // The files changed but did not load; the last good version stays.
  onFailed?: (error: Error, current: T | undefined) => void
}

// The files' identity and state: any replacement or write changes it.
function stamp(files: readonly string[]): string {
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

export class FilePoll<T> {
  readonly #options: FilePollOptions<T>
  #value: T | undefined
  #seen = ''
  // The files as they were when they last failed to load: reported once, retried on every poll.
  #failed = ''
  #timer: NodeJS.Timeout | undefined

  constructor(options: FilePollOptions<T>) {
    this.#options = options
  }

  current(): T | undefined {
    return this.#value
  }

  // Loads the files if they changed since the last look; true when a new version was loaded.
  poll(): boolean {
    const seen = stamp(this.#options.files)
    if (seen === this.#seen) return false
    try {
      const value = this.#options.load()
      const previous = this.#value
      this.#seen = seen
      this.#failed = ''
      this.#value = value
      this.#options.onLoaded?.(value, previous)
      return true
    } catch (error) {
      // Half-written files are common mid-rotation: look again next poll, but
      // say so once per state of the files, not at every poll.
      if (this.#failed !== seen) {
        this.#failed = seen
        this.#options.onFailed?.(error as Error, this.#value)
      }
      return false
    }
  }

  // Reads the files again whether or not they changed (SIGHUP).
  pollNow(): boolean {
    this.#seen = ''
    this.#failed = ''
    return this.poll()
  }

  // Loads now and throws if the files do not load (for a first version that must exist).
  loadNow(): T {
    const seen = stamp(this.#options.files)
    const value = this.#options.load()
    this.#seen = seen
    this.#value = value
    this.#options.onLoaded?.(value, undefined)
    return value
  }

  // Polls every intervalMs, calling tick after each poll. The timer does not
  // hold the process open unless keepAlive says so.
  start(intervalMs: number, tick?: (loaded: boolean) => void, keepAlive = false): void {
    this.#timer = setInterval(() => {
      const loaded = this.poll()
      tick?.(loaded)
    }, intervalMs)
    if (!keepAlive) this.#timer.unref()
  }

  // Lets the timer stop holding the process open.
  unref(): void {
    this.#timer?.unref()
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }
}
