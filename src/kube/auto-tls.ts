// Auto-TLS (AGENT_INJECT_TLS_AUTO=<MutatingWebhookConfiguration name>): wires
// the reconcile loop (auto-tls/reconcile.ts) to the cluster's stores
// (auto-tls/stores.ts) and, with several replicas, to the leader Lease.
import type { Settings } from '../settings.ts'
import type { Logger } from '../log.ts'
import type { CertSource } from '../tls/source.ts'
import { AutoTls } from './auto-tls/reconcile.ts'
import { secretStore, webhookStore } from './auto-tls/stores.ts'
import { loadKubeConfig } from './client.ts'
import { LEASE_NAME } from './names.ts'
import { defaultIdentity, LeaderElector, leaseStore } from './leader.ts'

export function defaultHosts(namespace: string, service = 'vault-injector'): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`]
}

export function autoTlsHosts(settings: Pick<Settings, 'tlsAutoHosts' | 'namespace'>): string[] {
  const listed = settings.tlsAutoHosts
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean)
  return listed.length > 0 ? listed : defaultHosts(settings.namespace)
}

// What `serve` uses when AGENT_INJECT_TLS_AUTO is set.
export function createAutoTlsSource(settings: Settings, logger: Logger): CertSource {
  const kc = loadKubeConfig()
  const tls = new AutoTls({
    secrets: secretStore(kc, settings.namespace),
    webhooks: webhookStore(kc, settings.tlsAuto, logger),
    webhookName: settings.tlsAuto,
    hosts: autoTlsHosts(settings),
    logger,
  })
  tls.start()
  if (!settings.useLeaderElector) {
    // One replica: it is the leader. (Several replicas without the elector
    // still converge, as every write is guarded by resourceVersion, but they
    // race each other; set AGENT_INJECT_USE_LEADER_ELECTOR=true.)
    void tls.setLeading(true)
    return tls
  }
  const elector = new LeaderElector({
    store: leaseStore(kc, settings.namespace, LEASE_NAME),
    namespace: settings.namespace,
    name: LEASE_NAME,
    identity: defaultIdentity(settings.podName),
    logger,
    onChange: (leading) => void tls.setLeading(leading),
  })
  elector.start()
  return {
    ready: () => tls.ready(),
    current: () => tls.current(),
    onChange: (listener) => tls.onChange(listener),
    isLeader: () => elector.leading,
    async close() {
      await elector.stop()
      await tls.close()
    },
  }
}
