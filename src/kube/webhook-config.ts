// The MutatingWebhookConfiguration, built in one place: `vault-injector
// register` sends it, and manifests/mutating-webhook.yaml is its output (a
// test keeps them equal). It follows Kubernetes' webhook guidance.
import type { AdmissionregistrationV1WebhookClientConfig, V1MutatingWebhookConfiguration } from '@kubernetes/client-node'

export interface WebhookConfigOptions {
  name: string
  // Where the webhook runs: a Service in the cluster, or a URL outside it.
  service?: { name: string; namespace: string; path: string; port: number }
  url?: string
  caBundle?: string
  failurePolicy: 'Ignore' | 'Fail'
  timeoutSeconds: number
  // The injector's own namespace, never sent to the webhook (no deadlock on its own pods).
  ownNamespace: string
}

export const DEFAULT_WEBHOOK_OPTIONS: WebhookConfigOptions = {
  name: 'vault-injector',
  service: { name: 'vault-injector', namespace: 'vault-injector', path: '/mutate', port: 443 },
  failurePolicy: 'Ignore',
  timeoutSeconds: 5,
  ownNamespace: 'vault-injector',
}

// Only pods carrying the inject annotation are sent: the API server skips the
// call for every other pod (Kubernetes 1.30+).
export const MATCH_CONDITION_EXPRESSION =
  "has(object.metadata.annotations) && 'vault.hashicorp.com/agent-inject' in object.metadata.annotations"

export function buildWebhookConfiguration(options: WebhookConfigOptions): V1MutatingWebhookConfiguration {
  if (!options.service === !options.url) throw new Error('give either a service or a url for the webhook')
  const clientConfig: AdmissionregistrationV1WebhookClientConfig = options.url ? { url: options.url } : { service: { ...options.service! } }
  if (options.caBundle) clientConfig.caBundle = options.caBundle
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: options.name, labels: { 'app.kubernetes.io/name': 'vault-injector', 'app.kubernetes.io/component': 'webhook' } },
    webhooks: [
      {
        name: 'inject.vault-injector.dev',
        admissionReviewVersions: ['v1', 'v1beta1'],
        sideEffects: 'None',
        failurePolicy: options.failurePolicy,
        timeoutSeconds: options.timeoutSeconds,
        // Safe because the engine is idempotent: a second call only adds the
        // secrets volume to containers added by later webhooks.
        reinvocationPolicy: 'IfNeeded',
        matchPolicy: 'Equivalent',
        clientConfig,
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
        namespaceSelector: {
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', options.ownNamespace] }],
        },
        objectSelector: { matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'NotIn', values: ['vault-injector'] }] },
        matchConditions: [{ name: 'vault-agent-inject-annotated', expression: MATCH_CONDITION_EXPRESSION }],
      },
    ],
  }
}
