// Auto-TLS against a real API server, as `serve` runs it in the cluster with
// AGENT_INJECT_TLS_AUTO: two replicas elect one leader through a Lease; the
// leader keeps the CA and the serving certificate in a Secret and puts the CA
// in the caBundle of every entry of the webhook configuration; both replicas
// serve the Secret's certificate and the API server trusts it. When the leader
// stops, the other replica takes the Lease, and a configuration deleted and
// registered again gets its caBundle back from the new leader. The replicas
// run as the vault-injector ServiceAccount bound by manifests/base/rbac.yaml,
// unchanged, on an API server that authorizes with RBAC: the least-privilege
// rules are proved sufficient, not only reviewed.
import t from 'tap'
import { AdmissionregistrationV1Api, AuthorizationV1Api, CoordinationV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node'
import { join } from 'node:path'
import { bundleCerts } from '../../src/kube/auto-tls/certificates.ts'
import { LEASE_NAME as LEASE, SECRET_NAME as SECRET } from '../../src/kube/names.ts'
import { fingerprintOf, Fatal, freePort, httpsGet, installInjectorIdentity, register, ROOT, servedFingerprint, start, startControlPlane, waitFor, type ControlPlane, type Process } from './harness.ts'

type Obj = Record<string, any>
const NS = 'vault-injector'
const APP_NS = 'e2e-auto'
// The name the shipped RBAC grants (resourceNames), as in manifests/.
const CONFIG = 'vault-injector'

interface Replica {
  name: string
  url: string
  process: Process
}

let cp: ControlPlane
let core: CoreV1Api
let admission: AdmissionregistrationV1Api
let coordination: CoordinationV1Api
// A kubeconfig with the vault-injector ServiceAccount's token, as in the pod.
let injectorKubeconfig: string
const replicas: Replica[] = []

async function startReplica(name: string): Promise<Replica> {
  const port = await freePort()
  const process = start(join(ROOT, 'node_modules/.bin/node'), [join(ROOT, 'src/cli.ts'), 'serve'], {
    AGENT_INJECT_LISTEN: `127.0.0.1:${port}`,
    AGENT_INJECT_TLS_AUTO: CONFIG,
    // The API server calls a URL on loopback, so the certificate names that address.
    AGENT_INJECT_TLS_AUTO_HOSTS: '127.0.0.1',
    AGENT_INJECT_USE_LEADER_ELECTOR: 'true',
    NAMESPACE: NS,
    POD_NAME: name,
    KUBECONFIG: injectorKubeconfig,
  })
  return { name, url: `https://127.0.0.1:${port}`, process }
}

async function secretData(): Promise<Record<string, string> | undefined> {
  try {
    const secret = await core.readNamespacedSecret({ name: SECRET, namespace: NS })
    return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))
  } catch {
    return undefined
  }
}

async function leaseHolder(): Promise<string | undefined> {
  try {
    return (await coordination.readNamespacedLease({ name: LEASE, namespace: NS })).spec?.holderIdentity || undefined
  } catch {
    return undefined
  }
}

// Per webhook entry, the fingerprints of the CAs in its caBundle.
async function caBundles(): Promise<string[][]> {
  const config = await admission.readMutatingWebhookConfiguration({ name: CONFIG })
  return (config.webhooks ?? []).map((w) => {
    return bundleCerts(Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8')).map((c) => c.fingerprint256)
  })
}

function alive(replica: Replica): void {
  if (replica.process.child.exitCode !== null) throw new Fatal(`${replica.name} exited: ${replica.process.output.join('')}`)
}

function pod(name: string): V1Pod {
  return {
    metadata: { name, annotations: { 'vault.hashicorp.com/agent-inject': 'true', 'vault.hashicorp.com/role': 'web', 'vault.hashicorp.com/agent-inject-secret-db': 'secret/data/shop/db' } },
    spec: { containers: [{ name: 'app', image: 'registry.example.com/app:1' }] },
  }
}

// The API server picks up caBundle changes from its own watch: retry a
// creation (failurePolicy Fail, so an untrusted webhook fails it) until it works.
async function createInjected(prefix: string): Promise<Obj> {
  let attempt = 0
  let created: Obj | undefined
  await waitFor(`a pod injected through ${prefix}`, async () => {
    created = (await core.createNamespacedPod({ namespace: APP_NS, body: pod(`${prefix}-${attempt++}`) })) as Obj
    return true
  })
  return created!
}

// Registered with --url (the API server reaches the replica on loopback) and
// no CA: auto-TLS fills the caBundle.
async function registerAt(replica: Replica): Promise<void> {
  const r = await register(cp.kubeconfigPath, ['--name', CONFIG, '--namespace', NS, '--url', `${replica.url}/mutate`, '--failure-policy', 'Fail', '--timeout-seconds', '10'])
  if (r.code !== 0) throw new Error(`register failed: ${r.output}`)
}

t.before(async () => {
  cp = await startControlPlane()
  core = cp.kubeConfig.makeApiClient(CoreV1Api)
  admission = cp.kubeConfig.makeApiClient(AdmissionregistrationV1Api)
  coordination = cp.kubeConfig.makeApiClient(CoordinationV1Api)
  await core.createNamespace({ body: { metadata: { name: APP_NS } } })
  await core.createNamespacedServiceAccount({ namespace: APP_NS, body: { metadata: { name: 'default' } } })
  injectorKubeconfig = await installInjectorIdentity(cp)
})
t.teardown(async () => {
  for (const replica of replicas) await replica.process.stop()
  await cp?.stop()
})

t.test('two replicas under the shipped RBAC: one leader, one Secret, the same certificate served, every caBundle set', async (t) => {
  const authz = cp.kubeConfig.makeApiClient(AuthorizationV1Api)
  const can = async (verb: string, resource: string, group = '', namespace?: string, name?: string): Promise<boolean> =>
    (await authz.createSubjectAccessReview({ body: { spec: { user: `system:serviceaccount:${NS}:vault-injector`, resourceAttributes: { verb, resource, group, ...(namespace ? { namespace } : {}), ...(name ? { name } : {}) } } } })).status?.allowed === true
  t.ok(await can('update', 'leases', 'coordination.k8s.io', NS, LEASE), 'the ServiceAccount may renew its Lease')
  t.notOk(await can('get', 'secrets', '', NS, 'some-other-secret'), 'and may not read other Secrets')
  t.notOk(await can('patch', 'mutatingwebhookconfigurations', 'admissionregistration.k8s.io', undefined, 'someone-elses'), 'nor patch other webhook configurations')

  replicas.push(await startReplica('replica-a'), await startReplica('replica-b'))
  await registerAt(replicas[0]!)
  // A second entry in the same configuration (it matches no pod): auto-TLS
  // must keep the caBundle of every entry, not only the first.
  const config = await admission.readMutatingWebhookConfiguration({ name: CONFIG })
  const first = config.webhooks![0]!
  const second = { ...first, name: 'second.vault-injector.dev', objectSelector: { matchLabels: { 'e2e-never': 'true' } } }
  await admission.replaceMutatingWebhookConfiguration({ name: CONFIG, body: { ...config, webhooks: [first, second] } })

  let data: Record<string, string> | undefined
  await waitFor('the auto-TLS Secret', async () => {
    for (const r of replicas) alive(r)
    data = await secretData()
    return Boolean(data?.['tls.crt'] && data['ca.crt'] && data['tls.key'])
  })
  const holder = await leaseHolder()
  t.ok(holder === 'replica-a' || holder === 'replica-b', `the Lease is held by one replica (${holder})`)
  // Renewals (every 5 s) go through too: the holder writes back the Lease it
  // read, acquireTime included, with a new renewTime.
  const leaseBefore = await coordination.readNamespacedLease({ name: LEASE, namespace: NS })
  let leaseAfter = leaseBefore
  await waitFor('a renewal of the Lease', async () => {
    leaseAfter = await coordination.readNamespacedLease({ name: LEASE, namespace: NS })
    return leaseAfter.metadata?.resourceVersion !== leaseBefore.metadata?.resourceVersion
  }, 20_000)
  t.equal(leaseAfter.spec?.holderIdentity, holder, 'renewed by the same holder')
  t.equal(String(leaseAfter.spec?.acquireTime), String(leaseBefore.spec?.acquireTime), 'acquireTime kept')
  t.not(String(leaseAfter.spec?.renewTime), String(leaseBefore.spec?.renewTime), 'renewTime moved')

  const ca = data!['ca.crt']!
  const served = fingerprintOf(data!['tls.crt']!)
  for (const replica of replicas) {
    await waitFor(`${replica.name} ready with the Secret's certificate`, async () => {
      alive(replica)
      return (await httpsGet(`${replica.url}/health/ready`, ca)).status === 204 && (await servedFingerprint(replica.url, ca)) === served
    })
  }
  t.pass('both replicas serve the certificate in the Secret, signed by its CA')

  await waitFor('the CA in every caBundle', async () => (await caBundles()).every((cas) => cas.includes(fingerprintOf(ca))))
  t.equal((await caBundles()).length, 2, 'both entries carry the CA')

  // `register --ca-from-secret` reads the same Secret (for a cert-manager-less
  // re-install, or a GitOps diff): its dry run prints that CA as the caBundle.
  const dry = await register(cp.kubeconfigPath, ['--name', CONFIG, '--namespace', NS, '--url', `${replicas[0]!.url}/mutate`, '--ca-from-secret', '--dry-run'])
  t.equal(dry.code, 0, dry.code === 0 ? 'register --ca-from-secret --dry-run exits 0' : dry.output)
  const printed = /caBundle: (\S+)/.exec(dry.output)?.[1] ?? ''
  t.equal(fingerprintOf(Buffer.from(printed, 'base64').toString('utf8')), fingerprintOf(ca), 'register --ca-from-secret --dry-run prints the Secret\'s CA')

  const created = await createInjected('auto-tls')
  t.same(
    created.spec.containers.map((c: Obj) => c.name),
    ['app', 'vault-agent'],
    'the API server trusts the auto-TLS certificate and the pod is injected',
  )
})

t.test('the leader stops: the other replica takes the Lease and keeps the caBundle', async (t) => {
  const holder = await leaseHolder()
  const leader = replicas.find((r) => r.name === holder)
  const other = replicas.find((r) => r.name !== holder)
  if (!leader || !other) return t.fail(`no leader among the replicas (Lease holder: ${holder})`)
  const caBefore = (await secretData())!['ca.crt']!

  await leader.process.stop()
  t.equal(leader.process.child.exitCode, 0, 'the leader exits cleanly on SIGTERM')
  // Released on shutdown, so the other replica does not wait out the lease.
  await waitFor(`${other.name} to take the Lease`, async () => {
    alive(other)
    return (await leaseHolder()) === other.name
  }, 30_000)
  t.pass(`${other.name} leads`)

  // Deleted and registered again, now pointing at the survivor, without a CA.
  await admission.deleteMutatingWebhookConfiguration({ name: CONFIG })
  await registerAt(other)
  await waitFor('the new leader to put the CA back in the caBundle', async () => {
    const bundles = await caBundles()
    return bundles.length > 0 && bundles.every((cas) => cas.includes(fingerprintOf(caBefore)))
  })
  t.equal((await secretData())!['ca.crt'], caBefore, 'the CA is kept across the change of leader')

  const created = await createInjected('after-failover')
  t.same(created.spec.containers.map((c: Obj) => c.name), ['app', 'vault-agent'], 'pods are injected through the new leader')
  for (const replica of replicas) {
    t.notMatch(replica.process.output.join(''), /forbidden|"level":"error"/i, `${replica.name} met no RBAC refusal and logged no error`)
  }
})
