// The policy's health on /metrics: a reload that failed leaves the last good
// policy in force, which only a log line and these metrics reveal.
import { Counter, Gauge, type Registry } from 'prom-client'
import type { PolicyWatcher } from './load.ts'

export function registerPolicyMetrics(registry: Registry, watcher: PolicyWatcher): void {
  let reported = 0
  new Counter({
    name: 'vault_injector_policy_reload_failures_total',
    help: 'Policy file changes that could not be loaded (the last good policy stayed in force).',
    registers: [registry],
    collect() {
      this.inc(watcher.reloadFailures - reported)
      reported = watcher.reloadFailures
    },
  })
  new Gauge({
    name: 'vault_injector_policy_file_in_force',
    help: '1 when the policy file on disk is the policy in force, 0 when its last change was refused.',
    registers: [registry],
    collect() {
      this.set(watcher.fileInForce ? 1 : 0)
    },
  })
}
