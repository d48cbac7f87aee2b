// Pods as the API server hands them to a mutating webhook: after defaulting
// and after the ServiceAccount admission plugin mounted the kube-api-access
// projected volume into every container.
import { readFileSync } from 'node:fs'
import type { JsonObject } from '../../src/engine/types.ts'

type Obj = Record<string, any>

const FIXTURES = new URL('../fixtures/', import.meta.url)

export function fixture(name: string): Obj {
  return JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as Obj
}

function randomSuffix(seed: string): string {
  let h = 0
  for (const c of seed) h = (h * 31 + c.charCodeAt(0)) >>> 0
  return h.toString(36).slice(0, 5).padEnd(5, 'x')
}

function defaultContainer(container: Obj, mountName: string, automount: boolean): Obj {
  const out: Obj = {
    imagePullPolicy: String(container.image ?? '').endsWith(':latest') ? 'Always' : 'IfNotPresent',
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    resources: {},
    ...structuredClone(container),
  }
  if (automount) {
    out.volumeMounts = [...(out.volumeMounts ?? []), { name: mountName, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }]
  }
  return out
}

// What the API server does to a pod (or pod template) before webhooks see it.
export function admitted(template: Obj, namespace = 'default'): JsonObject {
  const pod = structuredClone(template)
  pod.apiVersion = 'v1'
  pod.kind = 'Pod'
  pod.metadata = { namespace, ...(pod.metadata ?? {}) }
  if (!pod.metadata.name && !pod.metadata.generateName) pod.metadata.name = 'app'
  const spec = (pod.spec ??= {})
  const sa = spec.serviceAccountName ?? 'default'
  const automount = spec.automountServiceAccountToken !== false
  const mountName = `kube-api-access-${randomSuffix(JSON.stringify(template))}`
  spec.serviceAccountName = sa
  spec.serviceAccount = sa
  spec.restartPolicy ??= 'Always'
  spec.terminationGracePeriodSeconds ??= 30
  spec.dnsPolicy ??= 'ClusterFirst'
  spec.securityContext ??= {}
  spec.schedulerName ??= 'default-scheduler'
  spec.enableServiceLinks ??= true
  spec.priority ??= 0
  spec.preemptionPolicy ??= 'PreemptLowerPriority'
  spec.tolerations ??= [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  ]
  spec.containers = (spec.containers ?? []).map((c: Obj) => defaultContainer(c, mountName, automount))
  if (spec.initContainers) spec.initContainers = spec.initContainers.map((c: Obj) => defaultContainer(c, mountName, automount))
  if (automount) {
    spec.volumes = [
      ...(spec.volumes ?? []),
      {
        name: mountName,
        projected: {
          defaultMode: 420,
          sources: [
            { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
            { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
          ],
        },
      },
    ]
  }
  pod.status = { phase: 'Pending' }
  return pod as JsonObject
}

// An admitted pod with the given vault annotations on one app container.
export function annotatedPod(annotations: Record<string, string>, extra: Obj = {}): JsonObject {
  return admitted(
    {
      metadata: { name: 'app', annotations: { 'vault.hashicorp.com/agent-inject': 'true', 'vault.hashicorp.com/role': 'app', ...annotations } },
      spec: { serviceAccountName: 'app', containers: [{ name: 'app', image: 'registry.example.com/app:1.0' }], ...extra },
    },
    'team-a',
  )
}

export function containerNamed(pod: Obj, name: string): Obj | undefined {
  return [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])].find((c: Obj) => c.name === name)
}

export function agentConfigOf(pod: Obj, name = 'vault-agent'): Obj {
  const container = containerNamed(pod, name)
  const value = container?.env?.find((e: Obj) => e.name === 'VAULT_CONFIG')?.value
  if (typeof value !== 'string') throw new Error(`${name} has no VAULT_CONFIG`)
  return JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as Obj
}

export function volumeNames(pod: Obj): string[] {
  return (pod.spec.volumes ?? []).map((v: Obj) => v.name)
}

export function mountsOf(pod: Obj, container: string): { name: string; mountPath: string; readOnly?: boolean }[] {
  return containerNamed(pod, container)?.volumeMounts ?? []
}
