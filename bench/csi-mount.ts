// npm run bench:csi: the CSI provider's Mount for 1, 10 and 50 objects against
// a real Vault (dev server, Kubernetes auth on a local kube-apiserver, both from
// the e2e cache: bash test/e2e/build.sh), called over the provider's unix
// socket with the driver's messages. Prints per mount: Vault logins and reads,
// what one login per object would have cost, and the time of a mount.
// Mounts run one after another (as the driver's rotation does per pod), a
// bounded number per case.
import { credentials, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js'
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CsiProvider } from '../src/csi/provider.ts'
import * as proto from '../src/csi/proto.ts'
import { serveProvider } from '../src/csi/server.ts'
import { BIN, freePort, serviceAccountToken, start, startControlPlane, waitFor } from '../test/e2e/harness.ts'

const MOUNTS_PER_CASE = Number(process.env.MOUNTS ?? 30)
const NS = 'bench'

if (!existsSync(join(BIN, 'vault'))) {
  process.stderr.write(`bench:csi needs ${join(BIN, 'vault')}, etcd and kube-apiserver: run bash test/e2e/build.sh first\n`)
  process.exit(2)
}

const cp = await startControlPlane()
const port = await freePort()
const vaultAddr = `http://127.0.0.1:${port}`
const vault = start(join(BIN, 'vault'), ['server', '-dev', '-dev-root-token-id=root', `-dev-listen-address=127.0.0.1:${port}`], { HOME: cp.dir, VAULT_DISABLE_MLOCK: 'true' })
const stopAll = async (): Promise<void> => {
  await vault.stop()
  await cp.stop()
}
try {
  await waitFor('vault dev server', async () => (await fetch(`${vaultAddr}/v1/sys/health`)).status === 200)
  const vaultApi = async (method: string, path: string, body: unknown): Promise<void> => {
    const res = await fetch(`${vaultAddr}/v1/${path}`, { method, headers: { 'X-Vault-Token': 'root', 'content-type': 'application/json' }, body: JSON.stringify(body) })
    if (!res.ok) throw new Error(`Vault ${method} ${path}: ${res.status} ${await res.text()}`)
  }
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  await core.createNamespace({ body: { metadata: { name: NS } } })
  for (const name of ['app', 'reviewer']) await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name } } })
  await cp.kubeConfig.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({ body: { metadata: { name: 'bench-reviewer' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' }, subjects: [{ kind: 'ServiceAccount', name: 'reviewer', namespace: NS }] } })
  await vaultApi('POST', 'sys/auth/kubernetes', { type: 'kubernetes' })
  await vaultApi('POST', 'auth/kubernetes/config', { kubernetes_host: cp.apiUrl, kubernetes_ca_cert: cp.ca.certPem, token_reviewer_jwt: await serviceAccountToken(cp, NS, 'reviewer'), disable_local_ca_jwt: true })
  await vaultApi('PUT', 'sys/policies/acl/app', { policy: 'path "secret/data/bench/*" { capabilities = ["read"] }' })
  await vaultApi('POST', 'auth/kubernetes/role/app', { bound_service_account_names: ['app'], bound_service_account_namespaces: [NS], audience: 'vault', policies: ['app'], ttl: '1h' })
  for (let i = 0; i < 50; i++) await vaultApi('POST', `secret/data/bench/s${i}`, { data: { password: `p${i}`, username: `u${i}` } })
  const token = await serviceAccountToken(cp, NS, 'app', ['vault'])

  const socket = join(mkdtempSync(join(tmpdir(), 'bench-csi-')), 'vault.sock')
  const provider = new CsiProvider({ defaults: { vaultAddress: vaultAddr, authMountPath: 'kubernetes', vaultNamespace: '', tls: { caCertPath: '', caDirectory: '', serverName: '', clientCertPath: '', clientKeyPath: '', skipVerify: false } }, logger: { info() {}, warn() {} } })
  const server = await serveProvider(provider, socket, 'bench')
  const Client = makeGenericClientConstructor({
    Mount: { path: '/v1alpha1.CSIDriverProvider/Mount', requestStream: false, responseStream: false, requestSerialize: proto.encodeMountRequest, requestDeserialize: proto.decodeMountRequest, responseSerialize: proto.encodeMountResponse, responseDeserialize: proto.decodeMountResponse },
  }, 'CSIDriverProvider')
  const client = new Client(`unix:${socket}`, credentials.createInsecure()) as unknown as { Mount(req: proto.MountRequest, cb: (e: ServiceError | null, r?: proto.MountResponse) => void): void; close(): void }
  const mount = (req: proto.MountRequest): Promise<proto.MountResponse> => new Promise((resolve, reject) => client.Mount(req, (e, r) => (e ? reject(e) : resolve(r!))))

  const request = (objects: string): proto.MountRequest => ({
    attributes: JSON.stringify({
      roleName: 'app',
      objects,
      'csi.storage.k8s.io/pod.name': 'app-0',
      'csi.storage.k8s.io/pod.namespace': NS,
      'csi.storage.k8s.io/pod.uid': 'uid',
      'csi.storage.k8s.io/serviceAccount.name': 'app',
      'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({ vault: { token, expirationTimestamp: '' } }),
    }),
    secrets: '{}',
    targetPath: '/unused',
    permission: '420',
    currentObjectVersion: [],
  })
  // Each object its own secret; or every object a key of a few shared secrets (2 keys per secret).
  const distinct = (n: number): string => Array.from({ length: n }, (_, i) => `- objectName: o${i}\n  secretPath: secret/data/bench/s${i}\n  secretKey: password\n`).join('')
  const shared = (n: number): string => Array.from({ length: n }, (_, i) => `- objectName: o${i}\n  secretPath: secret/data/bench/s${Math.floor(i / 2)}\n  secretKey: ${i % 2 ? 'username' : 'password'}\n`).join('')

  const rows: string[] = []
  for (const [label, make] of [['own secret each', distinct], ['2 keys per secret', shared]] as const) {
    for (const n of [1, 10, 50]) {
      const req = request(make(n))
      for (let i = 0; i < 3; i++) await mount(req) // warm-up
      const before = provider.stats()
      const samples: number[] = []
      for (let i = 0; i < MOUNTS_PER_CASE; i++) {
        const t0 = performance.now()
        const response = await mount(req)
        samples.push(performance.now() - t0)
        if (response.files.length !== n) throw new Error(`expected ${n} files, got ${response.files.length}`)
      }
      const after = provider.stats()
      samples.sort((a, b) => a - b)
      const loginsPer = (after.logins - before.logins) / MOUNTS_PER_CASE
      const readsPer = (after.reads - before.reads) / MOUNTS_PER_CASE
      const p50 = samples[Math.floor(samples.length / 2)]!
      const p95 = samples[Math.min(samples.length - 1, Math.floor(samples.length * 0.95))]!
      rows.push(`| ${label} | ${n} | ${loginsPer} | ${readsPer} | ${loginsPer + readsPer} | ${2 * n} | ${p50.toFixed(1)} | ${p95.toFixed(1)} |`)
    }
  }
  client.close()
  await server.close()
  process.stdout.write(`CSI Mount against Vault ${vaultAddr} (dev server, Kubernetes auth via a local kube-apiserver), ${MOUNTS_PER_CASE} mounts per case, one at a time\n\n`)
  process.stdout.write('| objects | n | logins/mount | reads/mount | round trips | one login per object | p50 ms | p95 ms |\n|---|---|---|---|---|---|---|---|\n')
  process.stdout.write(rows.join('\n') + '\n')
} finally {
  await stopAll()
}
