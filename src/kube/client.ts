// Kubernetes API access: in-cluster config when running in a pod, else the
// current kubeconfig (KUBECONFIG or ~/.kube/config), as kubectl does.
import { ApiException, KubeConfig } from '@kubernetes/client-node'

export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig()
  kc.loadFromDefault()
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes cluster configured (no in-cluster service account and no kubeconfig)')
  return kc
}

export function isNotFound(error: unknown): boolean {
  return error instanceof ApiException && error.code === 404
}

export function isConflict(error: unknown): boolean {
  return error instanceof ApiException && error.code === 409
}

// The part of an API error worth logging (never the request body).
export function apiErrorText(error: unknown): string {
  if (error instanceof ApiException) {
    const body = error.body as { message?: unknown } | string | undefined
    const message = typeof body === 'object' && body !== null && typeof body.message === 'string' ? body.message : ''
    return `HTTP ${error.code}${message ? `: ${message}` : ''}`
  }
  return error instanceof Error ? error.message : String(error)
}
