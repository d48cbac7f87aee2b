// Realistic AdmissionReviews for the benchmark: pods as the API server sends
// them (token volume mounted, defaults filled in).
import { randomUUID } from 'node:crypto'
import { admitted } from '../test/helpers/pods.ts'
import type { JsonObject } from '../src/engine/types.ts'

export interface Scenario {
  name: string
  pod: JsonObject
}

const V = 'vault.hashicorp.com/'

function typical(): JsonObject {
  return admitted(
    {
      metadata: {
        generateName: 'web-7d4b9c8f6d-',
        labels: { app: 'web' },
        annotations: {
          [`${V}agent-inject`]: 'true',
          [`${V}role`]: 'web',
          [`${V}agent-inject-secret-db`]: 'database/creds/web',
          [`${V}agent-inject-template-db`]: '{{ with secret "database/creds/web" -}}\npostgresql://{{ .Data.username }}:{{ .Data.password }}@db:5432/web\n{{- end }}\n',
          [`${V}agent-inject-secret-config`]: 'secret/data/web/config',
          [`${V}agent-inject-secret-api-key`]: 'secret/data/web/api',
        },
      },
      spec: {
        serviceAccountName: 'web',
        containers: [{ name: 'web', image: 'registry.example.com/web:1.8.2', ports: [{ containerPort: 8080 }], env: [{ name: 'PORT', value: '8080' }], resources: { limits: { cpu: '1', memory: '512Mi' } } }],
      },
    },
    'shop',
  )
}

function manySecrets(): JsonObject {
  const annotations: Record<string, string> = { [`${V}agent-inject`]: 'true', [`${V}role`]: 'web' }
  for (let i = 0; i < 40; i++) {
    annotations[`${V}agent-inject-secret-s${i}`] = `secret/data/web/s${i}`
    annotations[`${V}agent-inject-template-s${i}`] = `{{ with secret "secret/data/web/s${i}" }}{{ .Data.data.value }}{{ end }}`
  }
  return admitted({ metadata: { generateName: 'many-', annotations }, spec: { containers: [{ name: 'web', image: 'web:1' }] } }, 'shop')
}

// 30 containers, 1,500 env vars, 100 volumes: the shape that made other
// injectors' patch diffs quadratic.
function large(): JsonObject {
  const containers = Array.from({ length: 30 }, (_, c) => ({
    name: `c${c}`,
    image: `registry.example.com/c${c}:1`,
    env: Array.from({ length: 50 }, (_, e) => ({ name: `VAR_${c}_${e}`, value: `value-${c}-${e}-${'x'.repeat(20)}` })),
    volumeMounts: Array.from({ length: 3 }, (_, m) => ({ name: `v${(c * 3 + m) % 99}`, mountPath: `/data/m${m}` })),
  }))
  const volumes = Array.from({ length: 99 }, (_, v) => ({ name: `v${v}`, configMap: { name: `cm-${v}` } }))
  return admitted(
    {
      metadata: { generateName: 'large-', annotations: { [`${V}agent-inject`]: 'true', [`${V}role`]: 'large', [`${V}agent-inject-secret-db`]: 'database/creds/large' } },
      spec: { containers, volumes },
    },
    'shop',
  )
}

function unannotated(): JsonObject {
  return admitted({ metadata: { generateName: 'plain-', labels: { app: 'plain' } }, spec: { containers: [{ name: 'app', image: 'app:1' }] } }, 'shop')
}

export function scenarios(): Scenario[] {
  return [
    { name: 'typical (3 secrets, 1 template)', pod: typical() },
    { name: '40 secrets and templates', pod: manySecrets() },
    { name: 'large (30 containers, 1,500 env, 100 volumes)', pod: large() },
    { name: 'unannotated', pod: unannotated() },
  ]
}

export function admissionReview(pod: JsonObject, namespace = 'shop'): JsonObject {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace,
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: randomUUID(), groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  }
}
