// Where auto-TLS keeps its state: the Secret with the CA and serving pair, and
// the MutatingWebhookConfiguration whose caBundle it keeps current. Tests use
// in-memory stores with the same interfaces.
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  ListWatch,
  setHeaderOptions,
  Watch,
  type KubeConfig,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node'
import type { Logger } from '../../log.ts'
import { apiErrorText, isNotFound } from '../client.ts'
import { SECRET_NAME } from '../names.ts'

// Secret keys: the served pair, the CA that signs it (and its key), and the CA before it.
export const SECRET_KEYS = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt', caKey: 'ca.key', previousCa: 'ca-previous.crt' } as const
export type SecretData = Partial<Record<(typeof SECRET_KEYS)[keyof typeof SECRET_KEYS], string>>

export interface SecretStore {
  read(): Promise<{ data: SecretData; resourceVersion?: string } | undefined>
  // Creates the Secret when resourceVersion is undefined, else replaces that
  // version; a conflict (someone wrote in between) throws. Returns the new version.
  write(data: SecretData, resourceVersion?: string): Promise<string | undefined>
}

export interface WebhookStore {
  // Every webhook entry's caBundle (base64 PEM), in order.
  read(): Promise<{ resourceVersion: string; caBundles: (string | undefined)[] } | undefined>
  // Sets every entry's caBundle, only if the configuration is still at resourceVersion with count entries.
  setCaBundle(resourceVersion: string, count: number, caBundleB64: string): Promise<void>
  // Calls onChange whenever the configuration is created, changed or deleted.
  watch?(onChange: () => void): { stop(): Promise<void> }
}

export function secretStore(kc: KubeConfig, namespace: string, name = SECRET_NAME): SecretStore {
  const api = kc.makeApiClient(CoreV1Api)
  return {
    async read() {
      try {
        const secret = await api.readNamespacedSecret({ name, namespace })
        return { data: (secret.data ?? {}) as SecretData, ...(secret.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}) }
      } catch (error) {
        if (isNotFound(error)) return undefined
        throw error
      }
    },
    async write(data, resourceVersion) {
      const metadata = { name, namespace, labels: { 'app.kubernetes.io/name': 'vault-injector', 'app.kubernetes.io/component': 'auto-tls' }, ...(resourceVersion ? { resourceVersion } : {}) }
      const body = { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata, data }
      const written = resourceVersion ? await api.replaceNamespacedSecret({ name, namespace, body }) : await api.createNamespacedSecret({ namespace, body })
      return written.metadata?.resourceVersion
    },
  }
}

const MWC_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations'

export function webhookStore(kc: KubeConfig, name: string, logger?: Logger): WebhookStore {
  const api = kc.makeApiClient(AdmissionregistrationV1Api)
  return {
    async read() {
      try {
        const config = await api.readMutatingWebhookConfiguration({ name })
        return { resourceVersion: config.metadata?.resourceVersion ?? '', caBundles: (config.webhooks ?? []).map((w) => w.clientConfig.caBundle) }
      } catch (error) {
        if (isNotFound(error)) return undefined
        throw error
      }
    },
    async setCaBundle(resourceVersion, count, caBundle) {
      // A JSON Patch guarded by what was read: the test ops fail it if the
      // configuration changed since (another writer, an entry added or removed).
      const body = [
        { op: 'test', path: '/metadata/resourceVersion', value: resourceVersion },
        ...Array.from({ length: count }, (_, i) => ({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle })),
      ]
      await api.patchMutatingWebhookConfiguration({ name, body }, setHeaderOptions('Content-Type', 'application/json-patch+json'))
    },
    // A list+watch of this one object (a metadata.name field selector, which
    // RBAC's resourceNames allows), restarted after errors.
    watch(onChange) {
      const fieldSelector = `metadata.name=${name}`
      const informer = new ListWatch<V1MutatingWebhookConfiguration>(MWC_PATH, new Watch(kc), () => api.listMutatingWebhookConfiguration({ fieldSelector }), false, undefined, fieldSelector)
      let stopped = false
      let retry: NodeJS.Timeout | undefined
      informer.on('change', () => onChange())
      informer.on('error', (error: unknown) => {
        if (stopped) return
        logger?.warn({ webhook: name, err: apiErrorText(error) }, 'auto-tls: webhook configuration watch failed; retrying in 5 s')
        retry = setTimeout(() => void informer.start().catch(() => {}), 5_000).unref()
      })
      void informer.start().catch(() => {})
      return {
        async stop() {
          stopped = true
          clearTimeout(retry)
          await informer.stop()
        },
      }
    },
  }
}
