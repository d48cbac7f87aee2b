// The CSI provider against real parts: the Secrets Store CSI Driver's side
// played by the driver's own code (test/e2e/go/csi-driver, built from
// sigs.k8s.io/secrets-store-csi-driver v1.6.0: its gRPC client stubs and the
// atomic writer that lays out ..data), a real Vault dev server with Kubernetes
// auth against the e2e kube-apiserver, and pod tokens from the TokenRequest API;
// last, the driver's own binary (test/e2e/go/secrets-store-csi-driver) serving
// NodePublishVolume in front of our provider, as the kubelet calls it.
import t from 'tap'
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node'
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseAllDocuments, stringify } from 'yaml'
import { BIN, freePort, installFixtureCrd, ROOT, serviceAccountToken, start, startControlPlane, waitFor, type ControlPlane, type Process } from './harness.ts'
import { startVault, type DevVault } from './vault.ts'

type Obj = Record<string, any>
const NS = 'csi'

for (const tool of ['vault', 'csi-driver']) {
  if (!existsSync(join(BIN, tool))) {
    t.plan(0, `no ${tool} binary in ${BIN}: test/e2e/build.sh could not build it from the Go module proxy`)
    process.exit(0)
  }
}

let cp: ControlPlane
let vault: DevVault
let vaultAddr = ''
let provider: Process
let socket = ''
let driver: Process | undefined
const published: string[] = []

const vaultApi = (method: string, path: string, body?: unknown): Promise<Obj> => vault.api(method, path, body)

// The example class (examples/csi), pointed at this test's Vault.
function exampleClass(): Obj {
  const doc = parseAllDocuments(readFileSync(join(ROOT, 'examples/csi/secretproviderclass.yaml'), 'utf8'))[0]!.toJS() as Obj
  doc.spec.parameters.vaultAddress = vaultAddr
  return doc
}

interface DriverRun {
  code: number
  stdout: string
  stderr: string
}

// One NodePublishVolume's provider call, as the driver makes it for a pod.
async function mountFor(name: string, spc: Obj, pod: Obj, target: string, options: { audience?: string; current?: Record<string, string> } = {}): Promise<DriverRun> {
  const dir = join(cp.dir, name)
  const spcFile = `${dir}-spc.yaml`
  writeFileSync(spcFile, stringify(spc))
  // What the kubelet puts in the volume context with podInfoOnMount: true.
  const context = {
    'csi.storage.k8s.io/pod.name': pod.metadata.name,
    'csi.storage.k8s.io/pod.namespace': pod.metadata.namespace,
    'csi.storage.k8s.io/pod.uid': pod.metadata.uid,
    'csi.storage.k8s.io/serviceAccount.name': pod.spec.serviceAccountName,
    'csi.storage.k8s.io/ephemeral': 'true',
    secretProviderClass: spc.metadata.name,
  }
  writeFileSync(`${dir}-context.json`, JSON.stringify(context))
  const args = ['-socket', socket, '-spc', spcFile, '-volume-context', `${dir}-context.json`, '-target', target]
  if (options.audience !== undefined) {
    // tokenRequests: [{audience: vault}] on the CSIDriver: the kubelet asks the TokenRequest API for the pod.
    const token = await serviceAccountToken(cp, pod.metadata.namespace, pod.spec.serviceAccountName, [options.audience], 600)
    writeFileSync(`${dir}-tokens.json`, JSON.stringify({ [options.audience]: { token, expirationTimestamp: new Date(Date.now() + 600_000).toISOString() } }))
    args.push('-tokens', `${dir}-tokens.json`)
  }
  if (options.current) {
    writeFileSync(`${dir}-current.json`, JSON.stringify(options.current))
    args.push('-current-versions', `${dir}-current.json`)
  }
  return new Promise((resolve) => {
    execFile(join(BIN, 'csi-driver'), args, (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }))
  })
}

t.before(async () => {
  cp = await startControlPlane()
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  await core.createNamespace({ body: { metadata: { name: NS } } })
  await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'webapp-sa' } } })
  vault = await startVault(cp, NS)
  vaultAddr = vault.address
  await vaultApi('PUT', 'sys/policies/acl/database', { policy: 'path "secret/data/db-pass" { capabilities = ["read"] }\npath "secret/data/other" { capabilities = ["read"] }' })
  // As HashiCorp's CSI tutorial sets it up: the role for the webapp's service account, audience vault.
  await vaultApi('POST', 'auth/kubernetes/role/database', { bound_service_account_names: ['webapp-sa'], bound_service_account_namespaces: [NS], audience: 'vault', policies: ['database'], ttl: '20m' })
  await vaultApi('POST', 'secret/data/db-pass', { data: { username: 'db-user', password: 'first-s3cret' } })
  await vaultApi('POST', 'secret/data/other', { data: { password: 'not-yours' } })

  const policyFile = join(cp.dir, 'policy.yaml')
  writeFileSync(policyFile, stringify({
    apiVersion: 'vault-injector.dev/v1alpha1',
    kind: 'InjectorPolicy',
    metadata: { name: 'csi-e2e' },
    spec: { rules: [{ name: 'csi-namespace', namespaces: { names: [NS] }, allow: { roles: ['database'], secretPaths: ['secret/data/db-pass'], authPaths: ['auth/kubernetes'], vaultAddresses: [vaultAddr] } }] },
  }))
  socket = join(cp.dir, 'providers', 'vault.sock')
  provider = start(join(ROOT, 'node_modules/.bin/node'), [join(ROOT, 'src/cli.ts'), 'csi-provider', '--provider-dir', join(cp.dir, 'providers'), '--policy', policyFile], { KUBECONFIG: cp.kubeconfigPath })
  await waitFor('the provider socket', async () => {
    if (provider.child.exitCode !== null) throw new Error(`csi-provider exited: ${provider.output.join('')}`)
    return existsSync(socket)
  })
})
t.teardown(async () => {
  // A tmpfs the real driver mounted and a failed test left behind, before the folder is removed.
  for (const target of published) spawnSync('umount', ['-l', target])
  await driver?.stop()
  await provider?.stop()
  await vault?.stop()
  await cp?.stop()
})

async function createPod(name: string, spc: string): Promise<Obj> {
  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  const pod = exampleClassPod()
  pod.metadata.name = name
  pod.spec.volumes[0].csi.volumeAttributes.secretProviderClass = spc
  return (await core.createNamespacedPod({ namespace: NS, body: pod })) as Obj
}

function exampleClassPod(): Obj {
  return parseAllDocuments(readFileSync(join(ROOT, 'examples/csi/secretproviderclass.yaml'), 'utf8'))[1]!.toJS() as Obj
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777
}

t.test('the driver\'s Version call', async (t) => {
  const out = await new Promise<string>((resolve, reject) => execFile(join(BIN, 'csi-driver'), ['-socket', socket, '-version'], (error, stdout) => (error ? reject(error) : resolve(stdout))))
  t.same(JSON.parse(out), { version: 'v1alpha1', runtimeName: 'vault-injector', runtimeVersion: JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version })
})

t.test('a class written for HashiCorp\'s provider mounts: ..data layout, contents, modes; a Vault write then a second Mount updates the file', async (t) => {
  const pod = await createPod('webapp', 'vault-database')
  const target = join(cp.dir, 'pods', pod.metadata.uid, 'volumes/kubernetes.io~csi/secrets-store-inline/mount')
  const first = await mountFor('webapp', exampleClass(), pod, target, { audience: 'vault' })
  t.equal(first.code, 0, first.stderr)
  const versions = JSON.parse(first.stdout) as Record<string, string>
  t.same(Object.keys(versions).sort(), ['db-pass.json', 'db-password', 'db-user'])

  t.ok(lstatSync(join(target, '..data')).isSymbolicLink(), 'the atomic writer\'s ..data link')
  t.match(readlinkSync(join(target, '..data')), /^\.\.\d{4}_/, '..data points at a timestamped folder')
  t.ok(lstatSync(join(target, 'db-password')).isSymbolicLink(), 'each file is a link into ..data')
  t.equal(readFileSync(join(target, 'db-password'), 'utf8'), 'first-s3cret')
  t.equal(readFileSync(join(target, 'db-user'), 'utf8'), 'db-user')
  t.equal(modeOf(join(target, 'db-password')), 0o644, 'the driver\'s default mode')
  t.equal(modeOf(join(target, 'db-user')), 0o600, 'filePermission: 0600')
  const whole = JSON.parse(readFileSync(join(target, 'db-pass.json'), 'utf8')) as Obj
  t.same(whole.data.data, { username: 'db-user', password: 'first-s3cret' }, 'no secretKey: the whole response')
  t.same(Object.keys(whole), ['request_id', 'lease_id', 'lease_duration', 'renewable', 'data', 'warnings', 'mount_type'], 'in Go\'s api.Secret field order')
  for (const v of Object.values(versions)) t.notMatch(v, /first-s3cret|db-user/, 'a version reveals nothing')

  // Rotation: the driver calls Mount again with what is mounted.
  const same = await mountFor('webapp', exampleClass(), pod, target, { audience: 'vault', current: versions })
  t.equal(same.code, 0, same.stderr)
  t.same(JSON.parse(same.stdout), versions, 'nothing changed in Vault: the same versions')
  await vaultApi('POST', 'secret/data/db-pass', { data: { username: 'db-user', password: 'rotated-s3cret' } })
  const rotated = await mountFor('webapp', exampleClass(), pod, target, { audience: 'vault', current: versions })
  t.equal(rotated.code, 0, rotated.stderr)
  const after = JSON.parse(rotated.stdout) as Record<string, string>
  t.equal(readFileSync(join(target, 'db-password'), 'utf8'), 'rotated-s3cret', 'the file shows the new value')
  t.not(after['db-password'], versions['db-password'], 'the changed object has a new version')
  t.equal(after['db-user'], versions['db-user'], 'an unchanged key of the same secret keeps its version')
  t.not(after['db-pass.json'], versions['db-pass.json'])
  const log = provider.output.join('')
  t.notMatch(log, /first-s3cret|rotated-s3cret/, 'no secret value in the provider\'s log')
  const lines = log.split('\n').filter((l) => l.includes('"csi mount"')).map((l) => JSON.parse(l) as Obj)
  t.match(lines.at(-1), { decision: 'mount', namespace: NS, pod: 'webapp', serviceAccount: 'webapp-sa', role: 'database', authPath: 'auth/kubernetes', secretPaths: ['secret/data/db-pass'], logins: 1, reads: 1, changed: ['db-password', 'db-pass.json'] })
})

t.test('without tokenRequests on the CSIDriver the provider asks the TokenRequest API for a pod-bound token', async (t) => {
  // The role wants audience "vault": the class names it, as HashiCorp's provider reads it.
  const spc = exampleClass()
  spc.spec.parameters.audience = 'vault'
  const pod = await createPod('webapp-no-token', 'vault-database')
  const target = join(cp.dir, 'pods', pod.metadata.uid, 'mount')
  const run = await mountFor('webapp-no-token', spc, pod, target)
  t.equal(run.code, 0, run.stderr)
  t.equal(readFileSync(join(target, 'db-password'), 'utf8'), 'rotated-s3cret')
})

t.test('the policy denies a class that breaks a rule, before Vault is asked; the error names the rule', async (t) => {
  const spc = exampleClass()
  spc.metadata.name = 'vault-other'
  spc.spec.parameters.objects = '- objectName: "stolen"\n  secretPath: "secret/data/other"\n  secretKey: "password"\n'
  const pod = await createPod('webapp-denied', 'vault-other')
  const target = join(cp.dir, 'pods', pod.metadata.uid, 'mount')
  const run = await mountFor('webapp-denied', spc, pod, target, { audience: 'vault' })
  t.not(run.code, 0)
  t.match(run.stderr, /code = PermissionDenied desc = denied by the vault-injector policy: policy rule "csi-namespace": secret path "secret\/data\/other" \(rendered to stolen\) is not allowed in namespace csi/)
  t.notOk(existsSync(join(target, 'stolen')), 'no file')
  const line = provider.output.join('').split('\n').filter((l) => l.includes('"csi mount"')).map((l) => JSON.parse(l) as Obj).at(-1)
  t.match(line, { decision: 'deny', pod: 'webapp-denied', secretPaths: ['secret/data/other'], logins: 0, reads: 0, policyFindings: [{ rule: 'csi-namespace', mode: 'enforce' }] })
})

t.test('Vault\'s refusal reaches the driver naming the object and Vault\'s answer', async (t) => {
  // A path the policy allows (the query is not part of the path) that Vault does not have.
  const spc = exampleClass()
  spc.metadata.name = 'vault-missing'
  spc.spec.parameters.objects = '- objectName: "old-password"\n  secretPath: "secret/data/db-pass?version=99"\n  secretKey: "password"\n'
  const pod = await createPod('webapp-missing', 'vault-missing')
  const run = await mountFor('webapp-missing', spc, pod, join(cp.dir, 'pods', pod.metadata.uid, 'mount'), { audience: 'vault' })
  t.not(run.code, 0)
  t.match(run.stderr, /object "old-password": Vault answered 404 for GET \/v1\/secret\/data\/db-pass/)
})

// The real driver binary (test/e2e/go/secrets-store-csi-driver) needs to mount a tmpfs: root and a mount it may make.
const DRIVER = join(BIN, 'secrets-store-csi-driver')
function driverSkip(): string | undefined {
  if (!existsSync(DRIVER)) return `no secrets-store-csi-driver binary in ${BIN}: test/e2e/build.sh could not build it`
  if (process.getuid?.() !== 0) return 'the driver mounts a tmpfs: needs root'
  const probe = mkdtempSync(join(tmpdir(), 'csi-mount-probe-'))
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { encoding: 'utf8' })
  if (mounted.status === 0) spawnSync('umount', [probe])
  rmSync(probe, { recursive: true, force: true })
  return mounted.status === 0 ? undefined : `the driver mounts a tmpfs, which is not permitted here: ${mounted.stderr.trim()}`
}

const isMountPoint = (path: string): boolean => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => line.split(' ')[4] === path)

t.test('the real driver binary (v1.6.0): its NodePublishVolume mounts a tmpfs, asks our provider, writes the files and records our versions in the SecretProviderClassPodStatus', { skip: driverSkip() }, async (t) => {
  for (const name of ['secretproviderclasses', 'secretproviderclasspodstatuses']) await installFixtureCrd(cp, name)
  const custom = cp.kubeConfig.makeApiClient(CustomObjectsApi)
  const GROUP = 'secrets-store.csi.x-k8s.io'
  // The class as a user applies it: the driver reads it from the API server.
  await waitFor('the SecretProviderClass stored', async () => {
    await custom.createNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: NS, plural: 'secretproviderclasses', body: exampleClass() })
    return true
  })
  const pod = await createPod('webapp-node', 'vault-database')

  const driverSocket = join(cp.dir, 'driver', 'csi.sock')
  mkdirSync(join(cp.dir, 'driver'))
  // As the driver's DaemonSet runs it, with the admin's kubeconfig instead of its ServiceAccount.
  driver = start(DRIVER, ['--endpoint', `unix://${driverSocket}`, '--nodeid', 'node-1', '--provider-volume', join(cp.dir, 'providers'), '--metrics-addr', `127.0.0.1:${await freePort()}`, '--kubeconfig', cp.kubeconfigPath, '-v', '2'])
  await waitFor('the driver\'s socket', async () => {
    if (driver!.child.exitCode !== null) throw new Error(`the driver exited: ${driver!.output.join('').slice(-3000)}`)
    return existsSync(driverSocket)
  })

  // What the kubelet sends for the pod's inline volume (podInfoOnMount, tokenRequests [{audience: vault}]).
  const token = await serviceAccountToken(cp, NS, 'webapp-sa', ['vault'], 600)
  const context = {
    secretProviderClass: 'vault-database',
    'csi.storage.k8s.io/pod.name': pod.metadata.name,
    'csi.storage.k8s.io/pod.namespace': NS,
    'csi.storage.k8s.io/pod.uid': pod.metadata.uid,
    'csi.storage.k8s.io/serviceAccount.name': 'webapp-sa',
    'csi.storage.k8s.io/ephemeral': 'true',
    'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({ vault: { token, expirationTimestamp: new Date(Date.now() + 600_000).toISOString() } }),
  }
  const contextFile = join(cp.dir, 'node-context.json')
  writeFileSync(contextFile, JSON.stringify(context))
  const target = join(cp.dir, 'kubelet/pods', pod.metadata.uid, 'volumes/kubernetes.io~csi/secrets-store-inline/mount')
  const volumeId = `csi-${pod.metadata.uid.replaceAll('-', '')}`
  const node = (command: string, ...extra: string[]): Promise<DriverRun> =>
    new Promise((resolve) => execFile(join(BIN, 'csi-driver'), [command, '-endpoint', driverSocket, '-volume-id', volumeId, '-target', target, ...extra], (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr })))

  published.push(target)
  const publish = await node('node-publish', '-volume-context', contextFile)
  t.equal(publish.code, 0, publish.stderr || 'NodePublishVolume')
  t.ok(isMountPoint(target), 'the target is a mount point (the driver\'s tmpfs)')
  t.equal(readFileSync(join(target, 'db-password'), 'utf8'), 'rotated-s3cret', 'the file has Vault\'s current value')
  t.ok(lstatSync(join(target, '..data')).isSymbolicLink(), 'in the atomic writer\'s ..data layout')
  t.equal(modeOf(join(target, 'db-user')), 0o600, 'filePermission from the class')

  const statusName = `${pod.metadata.name}-${NS}-vault-database`
  const status = (await custom.getNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: NS, plural: 'secretproviderclasspodstatuses', name: statusName })) as Obj
  t.match(status.status, { podName: 'webapp-node', secretProviderClassName: 'vault-database', mounted: true, targetPath: target })
  const recorded = Object.fromEntries((status.status.objects as { id: string; version: string }[]).map((o) => [o.id, o.version]))
  // The same provider process gives the same versions to the same contents: a direct Mount shows them.
  const direct = await mountFor('webapp-node-direct', exampleClass(), pod, join(cp.dir, 'pods', pod.metadata.uid, 'direct'), { audience: 'vault' })
  t.same(recorded, JSON.parse(direct.stdout), 'the status object holds the versions our provider returned')
  const line = provider.output.join('').split('\n').filter((l) => l.includes('"csi mount"')).map((l) => JSON.parse(l) as Obj).find((l) => l.pod === 'webapp-node')
  t.match(line, { decision: 'mount', namespace: NS, serviceAccount: 'webapp-sa', role: 'database', logins: 1 }, 'judged and audited as any mount')

  const unpublish = await node('node-unpublish')
  t.equal(unpublish.code, 0, unpublish.stderr || 'NodeUnpublishVolume')
  t.notOk(isMountPoint(target), 'unmounted')
  published.pop()
  t.notMatch(driver.output.join(''), /rotated-s3cret/, 'no secret value in the driver\'s log')
})
