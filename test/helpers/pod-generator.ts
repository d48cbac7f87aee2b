// A seeded generator of pods as the API server hands them to a mutating
// webhook: made by a controller (Deployment → ReplicaSet, Job, StatefulSet,
// or a bare pod), defaults filled in, the kube-api-access-* projected volume
// mounted into every container, sometimes IRSA's token and AWS_* variables,
// and a random combination of vault.hashicorp.com/ annotations: mostly valid
// values, some invalid ones. The same seed gives the same pods.
//
// Used by the differential test against vault-k8s (test/e2e/differential.e2e.ts)
// and by our own property tests (test/engine/generated-pods.test.ts).

type Obj = Record<string, any>

export interface Rng {
  next(): number
  int(maxExclusive: number): number
  pick<T>(items: readonly T[]): T
  chance(p: number): boolean
}

// mulberry32: small, fast, and the same sequence on every platform.
export function rng(seed: number): Rng {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number): number => Math.floor(next() * n)
  return { next, int, pick: (items) => items[int(items.length)]!, chance: (p) => next() < p }
}

const V = 'vault.hashicorp.com/'
const ALNUM = 'bcdfghjklmnpqrstvwxz2456789'

function suffix(r: Rng, length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += ALNUM[r.int(ALNUM.length)]
  return out
}

const APP_NAMES = ['web', 'api', 'payments', 'orders', 'worker', 'frontend', 'checkout', 'billing']
const CONTAINER_NAMES = ['app', 'nginx', 'envoy', 'worker', 'metrics', 'log-shipper', 'istio-proxy']
const INIT_NAMES = ['migrate', 'istio-init', 'wait-for-db', 'setup']
const IMAGES = ['nginx:1.27', 'registry.example.com/shop/web:1.8.2', 'ghcr.io/acme/api:2.3.1', 'busybox:1.36']

export interface GeneratedPod {
  pod: Obj
  namespace: string
  // What the generator meant to exercise, for the report.
  tags: string[]
}

function tokenVolume(name: string): Obj {
  return {
    name,
    projected: {
      defaultMode: 420,
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  }
}

const IRSA_VOLUME: Obj = {
  name: 'aws-iam-token',
  projected: { defaultMode: 420, sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' } }] },
}
const IRSA_ENV: Obj[] = [
  { name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'regional' },
  { name: 'AWS_DEFAULT_REGION', value: 'eu-west-1' },
  { name: 'AWS_REGION', value: 'eu-west-1' },
  { name: 'AWS_ROLE_ARN', value: 'arn:aws:iam::111122223333:role/app' },
  { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token' },
]

function container(r: Rng, name: string, app: string, init: boolean): Obj {
  const c: Obj = { name, image: r.pick(IMAGES) }
  if (!init && r.chance(0.5)) c.ports = [{ name: 'http', containerPort: 8080, protocol: 'TCP' }]
  if (r.chance(0.6)) c.env = [{ name: 'APP', value: app }, ...(r.chance(0.3) ? [{ name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } }] : [])]
  c.resources = r.chance(0.6) ? { limits: { cpu: '1', memory: '512Mi' }, requests: { cpu: '200m', memory: '256Mi' } } : {}
  c.volumeMounts = []
  c.terminationMessagePath = '/dev/termination-log'
  c.terminationMessagePolicy = 'File'
  c.imagePullPolicy = 'IfNotPresent'
  if (r.chance(0.3)) c.securityContext = { runAsUser: r.pick([1000, 1001, 65532]), runAsNonRoot: true, allowPrivilegeEscalation: false }
  return c
}

// The controller that made the pod decides its name, labels and owner.
function owner(r: Rng, app: string): { metadata: Obj; restartPolicy: string; kind: string } {
  const kind = r.pick(['Deployment', 'Deployment', 'Deployment', 'Job', 'StatefulSet', 'Pod'])
  const uid = `${suffix(r, 8)}-${suffix(r, 4)}-${suffix(r, 4)}-${suffix(r, 4)}-${suffix(r, 12)}`
  if (kind === 'Deployment') {
    const hash = suffix(r, 10)
    const rs = `${app}-${hash}`
    return {
      kind,
      restartPolicy: 'Always',
      metadata: {
        name: `${rs}-${suffix(r, 5)}`,
        generateName: `${rs}-`,
        labels: { app, 'pod-template-hash': hash },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs, uid, controller: true, blockOwnerDeletion: true }],
      },
    }
  }
  if (kind === 'Job') {
    return {
      kind,
      restartPolicy: 'Never',
      metadata: {
        name: `${app}-job-${suffix(r, 5)}`,
        generateName: `${app}-job-`,
        labels: { 'batch.kubernetes.io/controller-uid': uid, 'batch.kubernetes.io/job-name': `${app}-job`, 'controller-uid': uid, 'job-name': `${app}-job` },
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: `${app}-job`, uid, controller: true, blockOwnerDeletion: true }],
      },
    }
  }
  if (kind === 'StatefulSet') {
    return {
      kind,
      restartPolicy: 'Always',
      metadata: {
        name: `${app}-${r.int(3)}`,
        generateName: `${app}-`,
        labels: { app, 'apps.kubernetes.io/pod-index': '0', 'controller-revision-hash': `${app}-${suffix(r, 10)}`, 'statefulset.kubernetes.io/pod-name': `${app}-0` },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: app, uid, controller: true, blockOwnerDeletion: true }],
      },
    }
  }
  return { kind, restartPolicy: 'Always', metadata: { name: app, labels: { app } } }
}

// One annotation: a valid value most of the time, sometimes an invalid one.
interface AnnotationGen {
  key: string
  valid: readonly string[]
  invalid?: readonly string[]
}

const BOOL = ['true', 'false']
const BOOL_ODD = ['1', '0', 'TRUE', 'False', 't', 'F']
const BOOL_BAD = ['yes', 'no', 'on', 'enabled']

function podLevel(containers: string[]): AnnotationGen[] {
  return [
    { key: 'agent-pre-populate', valid: [...BOOL, ...BOOL_ODD], invalid: BOOL_BAD },
    { key: 'agent-pre-populate-only', valid: BOOL, invalid: BOOL_BAD },
    { key: 'agent-init-first', valid: BOOL, invalid: BOOL_BAD },
    { key: 'agent-inject-containers', valid: [containers[0]!, containers.join(','), containers.slice(0, 2).join(', '), ''] },
    { key: 'agent-image', valid: ['hashicorp/vault:1.18.5', 'registry.example.com/mirror/vault:2.0.4'] },
    { key: 'agent-configmap', valid: ['vault-agent-config'] },
    { key: 'agent-extra-secret', valid: ['app-extra'] },
    { key: 'agent-copy-volume-mounts', valid: [containers[0]!], invalid: ['no-such-container'] },
    { key: 'agent-share-process-namespace', valid: BOOL, invalid: BOOL_BAD },
    { key: 'agent-inject-default-template', valid: ['map', 'json'], invalid: ['yaml'] },
    { key: 'agent-inject-token', valid: BOOL, invalid: BOOL_BAD },
    { key: 'secret-volume-path', valid: ['/vault/secrets', '/etc/secrets', '/var/run/app-secrets'] },
    { key: 'preserve-secret-case', valid: BOOL },
    { key: 'template-config-exit-on-retry-failure', valid: BOOL, invalid: BOOL_BAD },
    { key: 'template-static-secret-render-interval', valid: ['30s', '5m', ''] },
    { key: 'template-max-connections-per-host', valid: ['0', '10'], invalid: ['ten'] },
    { key: 'service', valid: ['https://vault.example.com:8200', 'http://vault.vault.svc:8200'] },
    { key: 'namespace', valid: ['team-a', 'admin/team-b'] },
    { key: 'proxy-address', valid: ['http://proxy.internal:3128'] },
    { key: 'tls-skip-verify', valid: BOOL, invalid: BOOL_BAD },
    { key: 'tls-server-name', valid: ['vault.example.com'] },
    { key: 'tls-secret', valid: ['vault-tls'] },
    { key: 'ca-cert', valid: ['/vault/tls/ca.crt'] },
    { key: 'ca-key', valid: ['/vault/tls/ca'] },
    { key: 'client-cert', valid: ['/vault/tls/client.crt'] },
    { key: 'client-key', valid: ['/vault/tls/client.key'] },
    { key: 'client-max-retries', valid: ['3', '0'] },
    { key: 'client-timeout', valid: ['30s', '1m'] },
    { key: 'auth-path', valid: ['auth/kubernetes', 'auth/k8s-prod', 'auth/jwt'] },
    { key: 'auth-min-backoff', valid: ['1s', '500ms', ''], invalid: ['soon'] },
    { key: 'auth-max-backoff', valid: ['5m', '30s'], invalid: ['later'] },
    { key: 'agent-auto-auth-exit-on-err', valid: BOOL, invalid: BOOL_BAD },
    { key: 'agent-limits-cpu', valid: ['500m', '1', '', '250m'], invalid: ['lots'] },
    { key: 'agent-limits-mem', valid: ['128Mi', '256Mi', '1Gi', ''], invalid: ['big'] },
    { key: 'agent-limits-ephemeral', valid: ['1Gi', ''] },
    { key: 'agent-requests-cpu', valid: ['250m', '50m', '', '100m'], invalid: ['some'] },
    { key: 'agent-requests-mem', valid: ['64Mi', '32Mi', ''] },
    { key: 'agent-requests-ephemeral', valid: ['128Mi', ''] },
    { key: 'agent-run-as-user', valid: ['100', '1000', '0'], invalid: ['root'] },
    { key: 'agent-run-as-group', valid: ['1000', '3000', '0'], invalid: ['wheel'] },
    { key: 'agent-run-as-same-user', valid: BOOL },
    { key: 'agent-set-security-context', valid: BOOL, invalid: BOOL_BAD },
    { key: 'agent-revoke-on-shutdown', valid: BOOL, invalid: BOOL_BAD },
    { key: 'agent-revoke-grace', valid: ['5', '10', '0'], invalid: ['-1', 'soon'] },
    { key: 'go-max-procs', valid: ['1', '2'] },
    { key: 'log-level', valid: ['info', 'debug', 'trace', 'warn', 'error', 'warning', 'DEBUG', 'notice', 'err', 'INFO'] },
    { key: 'log-format', valid: ['standard', 'json', 'JSON'] },
    { key: 'agent-disable-idle-connections', valid: ['auto-auth', 'auto-auth,caching,templating'] },
    { key: 'agent-disable-keep-alives', valid: ['auto-auth', 'caching,proxying'] },
    { key: 'agent-cache-enable', valid: BOOL, invalid: BOOL_BAD },
    { key: 'agent-cache-listener-port', valid: ['8200', '8100'] },
    { key: 'agent-cache-use-auto-auth-token', valid: ['true', 'force', 'false'] },
    { key: 'agent-cache-exit-on-err', valid: BOOL, invalid: BOOL_BAD },
    { key: 'agent-enable-quit', valid: BOOL, invalid: BOOL_BAD },
    { key: 'agent-telemetry-prometheus_retention_time', valid: ['30s'] },
    { key: 'agent-telemetry-disable_hostname', valid: ['true'] },
    { key: 'agent-telemetry-prefix_filter', valid: ['["+vault.token", "-vault.expire"]'] },
    { key: 'agent-json-patch', valid: ['[{"op":"add","path":"/env/-","value":{"name":"EXTRA","value":"1"}}]', '[{"op":"replace","path":"/image","value":"registry.example.com/vault:2.0.4"}]', ''], invalid: ['{not json', '[{"op":"explode","path":"/x"}]'] },
    { key: 'agent-init-json-patch', valid: ['[{"op":"add","path":"/env/-","value":{"name":"INIT","value":"1"}}]', ''] },
  ]
}

const SECRET_NAMES = ['db', 'config', 'api-key', 'DB_Creds', 'tls', 'cert.pem', 'app-config']
const VAULT_PATHS = ['secret/data/app/config', 'database/creds/app', 'kv/data/shared', 'pki/issue/internal']

function secretAnnotations(r: Rng, a: Obj, tags: string[]): void {
  const count = r.pick([0, 1, 1, 2, 2, 3])
  const names = new Set<string>()
  while (names.size < count) names.add(r.pick(SECRET_NAMES))
  for (const name of names) {
    const shape = r.int(10)
    if (shape <= 5) {
      a[`${V}agent-inject-secret-${name}`] = r.pick(VAULT_PATHS)
      if (r.chance(0.4)) a[`${V}agent-inject-template-${name}`] = `{{ with secret "${r.pick(VAULT_PATHS)}" -}}\n{{ .Data.data.password }}\n{{- end }}\n`
    } else if (shape === 6) {
      // A template alone declares the secret (vault-k8s 1.3.0, #505).
      a[`${V}agent-inject-template-${name}`] = `{{ with secret "${r.pick(VAULT_PATHS)}" }}{{ .Data | toJSON }}{{ end }}`
      tags.push('template-only')
    } else if (shape === 7) {
      a[`${V}agent-inject-secret-${name}`] = r.pick(VAULT_PATHS)
      a[`${V}agent-inject-template-file-${name}`] = `/vault/custom/${name}.tmpl`
    } else if (shape === 8) {
      // A template file alone declares the secret in vault-k8s too.
      a[`${V}agent-inject-template-file-${name}`] = `/vault/custom/${name}.tmpl`
      tags.push('template-file-only')
    } else {
      // An empty path: vault-k8s ignores the secret.
      a[`${V}agent-inject-secret-${name}`] = r.pick(['', ' '])
      tags.push('empty-secret')
    }
    if (r.chance(0.25)) a[`${V}agent-inject-file-${name}`] = r.pick(['app.env', 'config/app.json', `${name}.txt`])
    if (r.chance(0.2)) a[`${V}agent-inject-perms-${name}`] = r.pick(['0400', '0644', '0440'])
    if (r.chance(0.15)) a[`${V}agent-inject-command-${name}`] = 'kill -HUP $(pidof app) || true'
    if (r.chance(0.25)) a[`${V}secret-volume-path-${name}`] = r.pick(['/etc/app', '/etc/db', '/vault/secrets', '/run/secrets/app'])
    if (r.chance(0.1)) a[`${V}error-on-missing-key-${name}`] = r.pick(BOOL)
    if (r.chance(0.1)) {
      a[`${V}agent-template-left-delim-${name}`] = '[['
      a[`${V}agent-template-right-delim-${name}`] = ']]'
    }
    if (r.chance(0.1)) a[`${V}preserve-secret-case-${name}`] = r.pick(BOOL)
  }
}

function authAnnotations(r: Rng, a: Obj, tags: string[]): void {
  const type = r.pick(['kubernetes', 'kubernetes', 'kubernetes', 'kubernetes', 'jwt', 'approle', 'aws', 'gcp', ''])
  if (type !== 'kubernetes' || r.chance(0.2)) a[`${V}auth-type`] = type
  if (type !== 'kubernetes') tags.push(`auth-${type || 'empty'}`)
  const role = r.pick(['app', 'web', 'payments-ro'])
  const roleShape = r.int(10)
  if (roleShape <= 6) a[`${V}role`] = role
  else if (roleShape === 7) a[`${V}auth-config-role`] = role
  else if (roleShape === 8) {
    // Both: vault-k8s logs in as `role`.
    a[`${V}role`] = role
    a[`${V}auth-config-role`] = 'admin'
    tags.push('role-and-auth-config-role')
  }
  if (type === 'aws' && r.chance(0.6)) a[`${V}auth-config-region`] = r.pick(['us-east-1', 'eu-central-1'])
  if (type === 'aws' && r.chance(0.3)) a[`${V}auth-config-type`] = 'iam'
  if (type === 'approle') {
    a[`${V}auth-config-role-id-file-path`] = '/vault/custom/role-id'
    a[`${V}auth-config-secret-id-file-path`] = '/vault/custom/secret-id'
  }
  if (type === 'jwt' && r.chance(0.5)) a[`${V}auth-config-path`] = '/var/run/secrets/kubernetes.io/serviceaccount/token'
  if (type === 'gcp') a[`${V}auth-config-type`] = 'iam'
  if (r.chance(0.05)) a[`${V}auth-config-token-path`] = '/var/run/secrets/tokens/vault'
}

export interface GenerateOptions {
  // Share of pods with an invalid value somewhere (default 0.2).
  invalidShare?: number
}

// One pod, fresh from the API server.
export function generatePod(r: Rng, options: GenerateOptions = {}): GeneratedPod {
  const tags: string[] = []
  const app = r.pick(APP_NAMES)
  const made = owner(r, app)
  tags.push(`owner-${made.kind}`)
  const namespace = r.chance(0.03) ? r.pick(['kube-system', 'kube-public']) : r.pick(['default', 'shop', 'team-a', 'payments'])
  const count = r.pick([1, 1, 1, 2, 2, 3])
  const names: string[] = []
  while (names.length < count) {
    const n = names.length === 0 ? app : r.pick(CONTAINER_NAMES)
    if (!names.includes(n)) names.push(n)
  }
  const containers = names.map((n) => container(r, n, app, false))
  const inits = r.chance(0.3) ? [container(r, r.pick(INIT_NAMES), app, true)] : []
  const volumes: Obj[] = []
  if (r.chance(0.3)) {
    volumes.push({ name: 'config', configMap: { name: `${app}-config`, defaultMode: 420 } })
    containers[0]!.volumeMounts.push({ name: 'config', mountPath: '/etc/config', readOnly: true })
  }
  if (r.chance(0.2)) {
    volumes.push({ name: 'tmp', emptyDir: {} })
    for (const c of [...containers, ...inits]) c.volumeMounts.push({ name: 'tmp', mountPath: '/tmp' })
  }
  const irsa = r.chance(0.12)
  if (irsa) {
    tags.push('irsa')
    volumes.push(IRSA_VOLUME)
    for (const c of [...containers, ...inits]) {
      c.env = [...(c.env ?? []), ...IRSA_ENV]
      c.volumeMounts.push({ name: 'aws-iam-token', readOnly: true, mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount' })
    }
  }
  const automount = !r.chance(0.05)
  const tokenName = `kube-api-access-${suffix(r, 5)}`
  if (automount) {
    volumes.push(tokenVolume(tokenName))
    for (const c of [...containers, ...inits]) c.volumeMounts.push({ name: tokenName, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' })
  } else {
    tags.push('no-token-mount')
  }
  for (const c of [...containers, ...inits]) if (c.volumeMounts.length === 0) delete c.volumeMounts

  const a: Obj = {}
  if (r.chance(0.2)) a['kubectl.kubernetes.io/restartedAt'] = '2026-11-30T10:00:00Z'
  a[`${V}agent-inject`] = r.chance(0.92) ? 'true' : r.pick(['false', '', 'TRUE', '1', 'yes'])
  authAnnotations(r, a, tags)
  secretAnnotations(r, a, tags)
  const gens = podLevel(names)
  const extra = r.pick([0, 1, 2, 3, 4, 6, 8])
  const invalid = r.chance(options.invalidShare ?? 0.2)
  for (let i = 0; i < extra; i++) {
    const gen = r.pick(gens)
    const useInvalid = invalid && gen.invalid && i === 0
    a[`${V}${gen.key}`] = r.pick(useInvalid ? gen.invalid! : gen.valid)
    if (useInvalid) tags.push(`invalid-${gen.key}`)
  }
  if (a[`${V}agent-run-as-same-user`] === 'true' && r.chance(0.7)) containers[0]!.securityContext = { runAsUser: 1000 }

  const spec: Obj = {
    volumes,
    ...(inits.length > 0 ? { initContainers: inits } : {}),
    containers,
    restartPolicy: made.restartPolicy,
    terminationGracePeriodSeconds: 30,
    dnsPolicy: 'ClusterFirst',
    serviceAccountName: app,
    serviceAccount: app,
    securityContext: {},
    schedulerName: 'default-scheduler',
    tolerations: [
      { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    ],
    priority: 0,
    enableServiceLinks: true,
    preemptionPolicy: 'PreemptLowerPriority',
  }
  if (!automount) spec.automountServiceAccountToken = false
  if (volumes.length === 0) delete spec.volumes
  if (r.chance(0.05)) spec.shareProcessNamespace = r.pick([true, false])
  const pod: Obj = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...made.metadata, namespace, annotations: a },
    spec,
    status: { phase: 'Pending', qosClass: 'BestEffort' },
  }
  return { pod, namespace, tags }
}

// An AdmissionReview as the API server sends it for a pod CREATE.
export function admissionReview(uid: string, generated: Pick<GeneratedPod, 'pod' | 'namespace'>): Obj {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: generated.namespace,
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: 'u', groups: ['system:serviceaccounts', 'system:authenticated'] },
      object: generated.pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  }
}
