// Kubernetes API access, found as kubectl finds it: KUBECONFIG, else
// ~/.kube/config, else the pod's service account (in-cluster).
import { ApiException, KubeConfig } from '@kubernetes/client-node'
import { readFileSync } from 'node:fs'

// Every pod has its namespace here (the service-account volume).
export const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace'

// The injector's namespace: NAMESPACE (the downward API) when set, else the
// pod's service-account namespace file, as client-go's in-cluster config and
// vault-k8s read it (vault-helm sets NAMESPACE only with several replicas),
// else "default" (outside a cluster).
export function injectorNamespace(configured: string, file = SERVICE_ACCOUNT_NAMESPACE_FILE): string {
  if (configured) return configured
  try {
    const fromFile = readFileSync(file, 'utf8').trim()
    if (fromFile) return fromFile
  } catch {
    // not in a pod
  }
  return 'default'
}

export function loadKubeConfig(env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig()
  try {
    kc.loadFromDefault()
  } catch (error) {
    throw new Error(`could not load the kubeconfig${env.KUBECONFIG ? ` (KUBECONFIG=${env.KUBECONFIG})` : ''}: ${(error as Error).message}`)
  }
  const cluster = kc.getCurrentCluster()
  // With nothing found, client-node falls back to an unauthenticated
  // http://localhost:8080 (the old insecure port). Never talk to that: it is
  // not a cluster anyone configured, and locally it may be this very server.
  const fallback = !env.KUBECONFIG && cluster?.name === 'cluster' && cluster.server === 'http://localhost:8080'
  if (!cluster || fallback) throw new Error('no Kubernetes cluster configured (no KUBECONFIG, no ~/.kube/config, no in-cluster service account)')
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
    const body = parseBody(error.body)
    const message = typeof body?.message === 'string' ? body.message : ''
    return `HTTP ${error.code}${message ? `: ${message}` : ''}`
  }
  return error instanceof Error ? error.message : String(error)
}

function parseBody(body: unknown): { message?: unknown } | undefined {
  if (typeof body === 'object' && body !== null) return body as { message?: unknown }
  if (typeof body !== 'string') return undefined
  try {
    const parsed = JSON.parse(body) as unknown
    return typeof parsed === 'object' && parsed !== null ? (parsed as { message?: unknown }) : undefined
  } catch {
    return undefined
  }
}
