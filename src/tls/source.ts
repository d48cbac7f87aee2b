// Where the serving certificate comes from. The server asks a CertSource for
// the first pair before it listens, and swaps its TLS context on every change
// (server.setSecureContext), so rotation never needs a restart.

export interface CertPair {
  certPem: string // leaf first, then any chain
  keyPem: string
  caPem?: string // the CA that signed certPem, when this process knows it
}

export interface CertSource {
  // Resolves with the first usable pair; the server waits for it before listening.
  ready(): Promise<CertPair>
  current(): CertPair | undefined
  // Called with each new pair after the first. A pair that fails to load is
  // reported through the logger and the last good pair stays in force.
  onChange(listener: (pair: CertPair) => void): void
  // A pair offered but refused (expired, not yet valid, key mismatch): the
  // last good pair stays in force. For the metric.
  onRejected?(listener: (reason: string) => void): void
  // Look again now (SIGHUP), whatever the polling schedule.
  reload?(): void
  close(): Promise<void>
  // Auto-TLS with leader election only: whether this replica leads (metrics).
  isLeader?(): boolean
}
