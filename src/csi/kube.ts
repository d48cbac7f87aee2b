// The provider's Kubernetes API use, both optional: a token for the pod when
// the driver sent none (as HashiCorp's provider does: TokenRequest bound to the
// pod, 15 minutes), and namespace labels for policy label selectors.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node'
import { apiErrorText } from '../kube/client.ts'
import type { PodInfo } from './params.ts'

const TOKEN_SECONDS = 15 * 60

export function tokenRequester(kc: KubeConfig): (pod: PodInfo, audience: string) => Promise<string> {
  const api = kc.makeApiClient(CoreV1Api)
  return async (pod, audience) => {
    if (!pod.namespace || !pod.serviceAccountName) throw new Error('the mount request names no pod namespace or service account (csi.storage.k8s.io/pod.namespace, serviceAccount.name): is podInfoOnMount set on the CSIDriver?')
    try {
      const response = await api.createNamespacedServiceAccountToken({
        namespace: pod.namespace,
        name: pod.serviceAccountName,
        body: { spec: { expirationSeconds: TOKEN_SECONDS, audiences: audience ? [audience] : [], boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.name, uid: pod.uid } } },
      })
      const token = response.status?.token
      if (!token) throw new Error('no token in the TokenRequest answer')
      return token
    } catch (error) {
      throw new Error(`cannot request a token for service account ${pod.namespace}/${pod.serviceAccountName}: ${apiErrorText(error)}`)
    }
  }
}
