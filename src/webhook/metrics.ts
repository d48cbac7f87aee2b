// Prometheus metrics: vault-k8s's four vault_agent_injector_* metrics under
// the same names (dashboards carry over), plus a request-duration histogram
// in seconds. One registry per server, so tests can run several.
import { X509Certificate } from 'node:crypto'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { CertPair } from '../tls/source.ts'
import { NAMESPACE_NAME } from './settings.ts'

export interface WebhookMetrics {
  registry: Registry
  queueLength: Gauge
  processingMs: Histogram
  injections: Counter<'namespace' | 'injection_type'>
  failedInjections: Counter<'namespace'>
  requestSeconds: Histogram<'code' | 'decision'>
  certificatesRefused: Counter<'reason'>
  // The namespace label for a review's namespace: bounded, since the value
  // comes from the request and anyone reaching the port can forge one.
  namespaceLabel(namespace: string): string
}

// Distinct namespace labels before the rest are counted together.
export const MAX_NAMESPACE_LABELS = 1_000

function boundedLabels(limit: number): (namespace: string) => string {
  const seen = new Set<string>()
  return (namespace) => {
    if (!NAMESPACE_NAME.test(namespace)) return '_invalid'
    if (seen.has(namespace)) return namespace
    if (seen.size >= limit) return '_other'
    seen.add(namespace)
    return namespace
  }
}

export function createMetrics(maxNamespaceLabels = MAX_NAMESPACE_LABELS): WebhookMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return {
    registry,
    namespaceLabel: boundedLabels(maxNamespaceLabels),
    queueLength: new Gauge({ name: 'vault_agent_injector_request_queue_length', help: 'Admission requests being processed.', registers: [registry] }),
    processingMs: new Histogram({
      name: 'vault_agent_injector_request_processing_duration_ms',
      help: 'Time to process an admission request, in milliseconds (vault-k8s buckets).',
      buckets: [5, 10, 25, 50, 75, 100, 250, 500, 1000, 2500, 5000, 7500, 10000],
      registers: [registry],
    }),
    injections: new Counter({
      name: 'vault_agent_injector_injections_by_namespace_total',
      help: 'Pods injected, by namespace and injection type.',
      labelNames: ['namespace', 'injection_type'],
      registers: [registry],
    }),
    failedInjections: new Counter({
      name: 'vault_agent_injector_failed_injections_by_namespace_total',
      help: 'Pods denied, by namespace.',
      labelNames: ['namespace'],
      registers: [registry],
    }),
    requestSeconds: new Histogram({
      name: 'vault_injector_request_duration_seconds',
      help: 'Time from request received to response sent for /mutate, in seconds.',
      labelNames: ['code', 'decision'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    certificatesRefused: new Counter({
      name: 'vault_injector_certificates_refused_total',
      help: 'Serving certificate pairs offered and refused (the last good pair stays in force), by reason.',
      labelNames: ['reason'],
      registers: [registry],
    }),
  }
}

// Which build is running, as Prometheus exporters say it: a constant 1 with
// the version in a label (join it on to any other series to see a rollout).
export function registerBuildInfo(registry: Registry, version: string): void {
  new Gauge({ name: 'vault_injector_build_info', help: 'Always 1; the labels say which version is running on which Node.js.', labelNames: ['version', 'node_version'], registers: [registry] })
    .labels(version, process.version)
    .set(1)
}

// When the serving certificate in use expires, read at each scrape: an alert
// on `vault_injector_serving_certificate_expiry_timestamp_seconds - time()`
// catches a rotation that stopped (cert-manager gone, auto-TLS without a leader).
export function registerCertificateExpiry(registry: Registry, current: () => CertPair | undefined): void {
  let seen: { pem: string; expirySeconds: number } | undefined
  new Gauge({
    name: 'vault_injector_serving_certificate_expiry_timestamp_seconds',
    help: 'Expiry (notAfter) of the serving certificate in use, in seconds since the Unix epoch.',
    registers: [registry],
    collect() {
      const pem = current()?.certPem
      if (!pem) return
      if (seen?.pem !== pem) seen = { pem, expirySeconds: Math.floor(new Date(new X509Certificate(pem).validTo).getTime() / 1000) }
      this.set(seen.expirySeconds)
    },
  })
}

// Whether this replica holds the auto-TLS leader Lease (only with the elector on).
export function registerLeadership(registry: Registry, leading: () => boolean): void {
  new Gauge({
    name: 'vault_injector_leader',
    help: '1 while this replica is the auto-TLS leader (it writes the certificate Secret and the caBundle), else 0.',
    registers: [registry],
    collect() {
      this.set(leading() ? 1 : 0)
    },
  })
}
