// Auto-TLS (AGENT_INJECT_TLS_AUTO=<MutatingWebhookConfiguration name>): wires
// the reconcile loop (auto-tls/reconcile.ts) to the cluster's stores
// (auto-tls/stores.ts) and, with several replicas, to the leader Lease (or,
// where RBAC grants no Leases, vault-k8s's ConfigMap lock: configmap-lock.ts).
// With one replica (no elector) the certificates stay in memory, as in
// vault-k8s (auto-tls/memory-store.ts).
import type { Settings } from '../settings.ts'
import type { Logger } from '../log.ts'
import type { CertSource } from '../tls/source.ts'
import { AutoTls } from './auto-tls/reconcile.ts'
import { memorySecretStore } from './auto-tls/memory-store.ts'
import { secretStore, webhookStore } from './auto-tls/stores.ts'
import { injectorNamespace, loadKubeConfig } from './client.ts'
import { CONFIGMAP_LOCK_NAME, configMapLockStore, leaseOrConfigMapStore } from './configmap-lock.ts'
import { LEASE_NAME, SECRET_NAME } from './names.ts'
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
  const namespace = injectorNamespace(settings.namespace)
  const namespaceFrom = settings.namespace ? 'NAMESPACE' : namespace === 'default' ? 'default' : 'service account'
  const store = settings.useLeaderElector ? `the Secret ${SECRET_NAME}` : 'memory'
  logger.info({ webhook: settings.tlsAuto, namespace, namespaceFrom, store }, `auto-tls in namespace ${namespace} (${namespaceFrom}); certificates kept in ${store}`)
  const tls = new AutoTls({
    // With the elector the replicas share the certificate through a Secret.
    // Without it there is one replica and, as in vault-k8s, the certificate
    // stays in memory: vault-helm gives a single replica no Secret access.
    secrets: settings.useLeaderElector ? secretStore(kc, namespace) : memorySecretStore(),
    webhooks: webhookStore(kc, settings.tlsAuto, logger),
    webhookName: settings.tlsAuto,
    hosts: autoTlsHosts({ ...settings, namespace }),
    logger,
  })
  tls.start()
  if (!settings.useLeaderElector) {
    // One replica: it is the leader. Several replicas need the elector: each
    // would make its own CA and they would keep replacing the caBundle.
    void tls.setLeading(true)
    return tls
  }
  const elector = new LeaderElector({
    // A Lease where the RBAC allows one (our manifests and chart), else
    // vault-k8s's ConfigMap lock, which vault-helm's Role allows.
    store: leaseOrConfigMapStore(leaseStore(kc, namespace, LEASE_NAME), configMapLockStore(kc, namespace), logger, { lease: LEASE_NAME, configMap: CONFIGMAP_LOCK_NAME }),
    namespace,
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
