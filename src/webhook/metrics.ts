// Prometheus metrics: vault-k8s's four vault_agent_injector_* metrics under
// the same names (dashboards carry over), plus a request-duration histogram
// in seconds. One registry per server, so tests can run several.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

export interface WebhookMetrics {
  registry: Registry
  queueLength: Gauge
  processingMs: Histogram
  injections: Counter<'namespace' | 'injection_type'>
  failedInjections: Counter<'namespace'>
  requestSeconds: Histogram<'code' | 'decision'>
}

export function createMetrics(): WebhookMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return {
    registry,
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
  }
}
