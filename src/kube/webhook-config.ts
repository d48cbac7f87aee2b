// The MutatingWebhookConfiguration, built in one place: `vault-injector
// register` sends it, and manifests/base/mutating-webhook.yaml is its output (a
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
  // false sends every pod (not only annotated ones): needed when an
  // InjectorPolicy's namespace defaults turn injection on for pods that carry
  // no annotation, or on clusters older than 1.28 (no matchConditions).
  matchConditions?: boolean
}

export const DEFAULT_WEBHOOK_OPTIONS: WebhookConfigOptions = {
  name: 'vault-injector',
  service: { name: 'vault-injector', namespace: 'vault-injector', path: '/mutate', port: 443 },
  failurePolicy: 'Ignore',
  timeoutSeconds: 5,
}

// Only pods carrying the inject annotation are sent: the API server skips the
// call for every other pod (matchConditions: beta and on in 1.28, GA in 1.30).
// - has() first: a pod with no annotations at all has no map to look in, and
//   an expression that errors would fall back to failurePolicy for that pod.
// - Presence, not the value: "true", "1", "t"... all mean true (Go's
//   ParseBool), and a value that does not parse must reach the engine to be
//   rejected with a message, as vault-k8s does.
// - Already-injected pods still match, as they must: on reinvocation the
//   engine tops up the mounts of containers later webhooks added.
export const MATCH_CONDITION_EXPRESSION =
  "has(object.metadata.annotations) && 'vault.hashicorp.com/agent-inject' in object.metadata.annotations"

// The API server calls webhooks over HTTPS only, and refuses user info, a
// query or a fragment in the URL.
export function urlProblem(text: string): string | undefined {
  const url = URL.canParse(text) ? new URL(text) : undefined
  if (!url || url.protocol !== 'https:' || url.username || url.password || url.search || url.hash) return `--url: "${text}" must be an https:// URL without user, query or fragment`
  return undefined
}

export function buildWebhookConfiguration(options: WebhookConfigOptions): V1MutatingWebhookConfiguration {
  if (!options.service === !options.url) throw new Error('give either a service or a url for the webhook')
  const problem = options.url === undefined ? undefined : urlProblem(options.url)
  if (problem) throw new Error(problem)
  if (!Number.isInteger(options.timeoutSeconds) || options.timeoutSeconds < 1 || options.timeoutSeconds > 30) throw new Error(`timeoutSeconds ${options.timeoutSeconds} is not accepted (1-30)`)
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
        // Ignore by default, as vault-k8s: see docs/deploy.md for the trade-off.
        failurePolicy: options.failurePolicy,
        timeoutSeconds: options.timeoutSeconds,
        // Safe because the engine is idempotent: a second call only adds the
        // secrets volume to containers added by later webhooks.
        reinvocationPolicy: 'IfNeeded',
        // Pods reached through another API version or group are still sent.
        matchPolicy: 'Equivalent',
        clientConfig,
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
        // Never the control plane's namespaces. The injector's own pods are
        // kept out by their label, not by their namespace's name, so the same
        // configuration holds in whatever namespace it is installed.
        namespaceSelector: {
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public'] }],
        },
        objectSelector: { matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'NotIn', values: ['vault-injector'] }] },
        ...(options.matchConditions === false ? {} : { matchConditions: [{ name: 'vault-agent-inject-annotated', expression: MATCH_CONDITION_EXPRESSION }] }),
      },
    ],
  }
}
