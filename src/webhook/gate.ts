// Admission slots: how many reviews the server holds at once, and how many
// body bytes they may hold between them. A slot is taken when a review's
// headers arrive and given back exactly once: when its answer is sent, its
// request is aborted, its connection closes (a pipelined review whose answer
// was still queued), or it has been held longer than any API server waits.
//
// Memory is bounded by this, not by luck: bodies in flight ≤ maxBodyBytes in
// total (each review reserves its Content-Length, or the body limit when it
// declares none), and the engine handles one review at a time (it is
// synchronous), so what it builds is bounded by the largest accepted body.
//
// Slow clients cannot starve fast ones: when every slot is taken, the review
// that has been receiving its body the longest (past RECEIVE_GRACE_MS) is cut
// off to make room. The API server sends a body at once; only a trickler is
// still receiving a second later.
export const RECEIVE_GRACE_MS = 1_000

export interface Slot {
  readonly bytes: number
  readonly takenAt: number
  // Whether the body is still arriving (the slot may then be taken back).
  receiving: boolean
  // Ends the client's connection (the slot comes back through release).
  evict: () => void
}

export interface GateLimits {
  maxRequests: number
  maxBodyBytes: number
}

export class AdmissionGate {
  #limits: GateLimits
  // In arrival order, so the first receiving slot found is the oldest.
  #held = new Set<Slot>()
  #bytes = 0
  evictions = 0

  constructor(limits: GateLimits) {
    this.#limits = limits
  }

  get inFlight(): number {
    return this.#held.size
  }

  get bytesHeld(): number {
    return this.#bytes
  }

  get full(): boolean {
    return this.#held.size >= this.#limits.maxRequests
  }

  #fits(bytes: number): boolean {
    return this.#held.size < this.#limits.maxRequests && this.#bytes + bytes <= this.#limits.maxBodyBytes
  }

  // A slot for a review declaring `bytes` of body, making room by cutting off
  // slow senders if needed; undefined when there is no room.
  take(bytes: number, now: number, evict: () => void): Slot | undefined {
    const reserved = Math.min(bytes, this.#limits.maxBodyBytes)
    while (!this.#fits(reserved)) {
      const slowest = this.#slowestReceiver(now)
      if (!slowest) return undefined
      this.release(slowest)
      this.evictions++
      slowest.evict()
    }
    const slot: Slot = { bytes: reserved, takenAt: now, receiving: true, evict }
    this.#held.add(slot)
    this.#bytes += reserved
    return slot
  }

  #slowestReceiver(now: number): Slot | undefined {
    for (const slot of this.#held) {
      if (slot.takenAt > now - RECEIVE_GRACE_MS) return undefined
      if (slot.receiving) return slot
    }
    return undefined
  }

  // Idempotent: every path that ends a review may call it.
  release(slot: Slot): void {
    if (!this.#held.delete(slot)) return
    this.#bytes -= slot.bytes
  }

  // Slots held since before `before`: their clients are cut off. Nothing
  // legitimate holds one that long (the API server gives up sooner).
  expire(before: number): number {
    let expired = 0
    for (const slot of this.#held) {
      if (slot.takenAt >= before) break
      this.release(slot)
      slot.evict()
      expired++
    }
    return expired
  }
}
