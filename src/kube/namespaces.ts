// Namespace labels for policy rules that select namespaces by label, kept in
// memory by a watch (a client-node informer): the admission path reads the
// cache and never calls the API.
import { CoreV1Api, makeInformer, type KubeConfig, type V1Namespace } from '@kubernetes/client-node'
import type { Logger } from '../log.ts'
import { apiErrorText } from './client.ts'

export interface NamespaceLabels {
  // undefined for a namespace the watch has not seen (yet).
  labels(namespace: string): Readonly<Record<string, string>> | undefined
  // The first list is in: from here on an unknown namespace is a new one.
  synced(): boolean
  stop(): Promise<void>
}

export function watchNamespaceLabels(kc: KubeConfig, logger: Logger): NamespaceLabels {
  const api = kc.makeApiClient(CoreV1Api)
  // client-node's informer says 'connect' before it lists: the list resolving
  // is the signal (the informer takes the items in right after).
  let listed = false
  const informer = makeInformer<V1Namespace>(kc, '/api/v1/namespaces', async () => {
    const result = await api.listNamespace()
    setImmediate(() => (listed = true))
    return result
  })
  // stop() aborts the watch, which client-node reports as an error too: no restart then.
  let stopped = false
  let retry: NodeJS.Timeout | undefined
  informer.on('error', (error: unknown) => {
    if (stopped) return
    logger.warn({ err: apiErrorText(error) }, 'namespace watch failed; retrying in 5 s')
    retry = setTimeout(() => void informer.start().catch(() => {}), 5000).unref()
  })
  void informer.start().catch((error: unknown) => logger.warn({ err: apiErrorText(error) }, 'namespace watch did not start'))
  return {
    // A namespace not seen yet (created a moment ago, or the watch not synced)
    // is unknown: the policy then fails closed for rules that select by label.
    labels: (namespace) => {
      const seen = informer.get(namespace)
      return seen ? (seen.metadata?.labels ?? { 'kubernetes.io/metadata.name': namespace }) : undefined
    },
    synced: () => listed,
    stop: () => {
      stopped = true
      clearTimeout(retry)
      return informer.stop()
    },
  }
}
