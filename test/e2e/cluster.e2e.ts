// vault-injector behind a real kube-apiserver: registration, injection of
// stored pods, denials and warnings reaching the client, reinvocation,
// failurePolicy with the webhook down, and certificate rotation under load.
import t from 'tap'
import { AdmissionregistrationV1Api, ApiException, CoreV1Api, type V1Pod } from '@kubernetes/client-node'
import { readFileSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { join } from 'node:path'
import { generateCA, generateServingCert } from '../../src/tls/ca.ts'
import { fingerprintOf, freePort, installInjectorIdentity, register, ROOT, servedFingerprint, startControlPlane, startInjector, waitFor, type ControlPlane, type Injector } from './harness.ts'

type Obj = Record<string, any>
const NS = 'e2e'

let cp: ControlPlane
let core: CoreV1Api
let injector: Injector

t.before(async () => {
  cp = await startControlPlane()
  core = cp.kubeConfig.makeApiClient(CoreV1Api)
  await core.createNamespace({ body: { metadata: { name: NS, labels: { team: 'shop' } } } })
  // No controller-manager runs: create the service accounts pods use.
  for (const name of ['default', 'web']) await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name } } })
  // The control pods, stored without the webhook, use the same accounts.
  for (const name of ['default', 'web']) await core.createNamespacedServiceAccount({ namespace: 'kube-system', body: { metadata: { name } } })
  // KUBECONFIG: the injector watches namespace labels for the policy's
  // selectors, as the vault-injector ServiceAccount under the shipped RBAC.
  const injectorKubeconfig = await installInjectorIdentity(cp)
  injector = await startInjector(cp.dir, { AGENT_INJECT_POLICY_FILE: join(ROOT, 'test/e2e/policy.yaml'), KUBECONFIG: injectorKubeconfig })
})
t.teardown(async () => {
  await injector?.stop()
  await cp?.stop()
})

function podSpec(name: string, annotations: Record<string, string>, extra: Obj = {}): V1Pod {
  return {
    metadata: { name, annotations },
    spec: { serviceAccountName: 'web', containers: [{ name: 'app', image: 'registry.example.com/app:1' }], ...extra },
  }
}

const inject = (more: Record<string, string> = {}): Record<string, string> => ({
  'vault.hashicorp.com/agent-inject': 'true',
  'vault.hashicorp.com/role': 'web',
  'vault.hashicorp.com/agent-inject-secret-db': 'secret/data/shop/db',
  ...more,
})

async function createPod(pod: V1Pod): Promise<Obj> {
  return (await core.createNamespacedPod({ namespace: NS, body: pod })) as Obj
}

async function rejection(pod: V1Pod): Promise<string> {
  try {
    await createPod(pod)
  } catch (error) {
    if (error instanceof ApiException) return typeof error.body === 'string' ? error.body : JSON.stringify(error.body)
    throw error
  }
  return 'created'
}

// A stored pod without what differs between two creations of the same pod.
function comparable(pod: Obj): Obj {
  const text = JSON.stringify({ annotations: pod.metadata.annotations ?? {}, labels: pod.metadata.labels ?? {}, spec: pod.spec })
  return JSON.parse(text.replace(/kube-api-access-[a-z0-9]+/g, 'kube-api-access')) as Obj
}

function names(list: Obj[] | undefined): string[] {
  return (list ?? []).map((c) => c.name)
}

t.test('register creates the MutatingWebhookConfiguration with its caBundle', async (t) => {
  const caFile = join(cp.dir, 'webhook-ca.crt')
  writeFileSync(caFile, injector.ca.certPem)
  const r = await register(cp.kubeconfigPath, ['--url', `${injector.url}/mutate`, '--ca-file', caFile, '--failure-policy', 'Fail', '--timeout-seconds', '10'])
  t.equal(r.code, 0, r.output)
  t.match(r.output, /mutatingwebhookconfiguration\/vault-injector created/)
  const mwc = await cp.kubeConfig.makeApiClient(AdmissionregistrationV1Api).readMutatingWebhookConfiguration({ name: 'vault-injector' })
  const hook = mwc.webhooks![0]!
  t.equal(Buffer.from(hook.clientConfig.caBundle!, 'base64').toString(), injector.ca.certPem)
  t.equal(hook.reinvocationPolicy, 'IfNeeded')
  t.same(hook.matchConditions?.map((m) => m.name), ['vault-agent-inject-annotated'])
  const again = await register(cp.kubeconfigPath, ['--url', `${injector.url}/mutate`, '--ca-file', caFile, '--failure-policy', 'Fail', '--timeout-seconds', '10'])
  t.match(again.output, /updated/, 'running it again updates in place')
  // The API server caches webhook configurations: give it a moment.
  await new Promise((r) => setTimeout(r, 2000))
})

t.test('an annotated pod is stored with the agents; an unannotated one unchanged', async (t) => {
  const pod = await createPod(podSpec('injected', inject()))
  t.same(names(pod.spec.initContainers), ['vault-agent-init'])
  t.same(names(pod.spec.containers), ['app', 'vault-agent'])
  t.same(names(pod.spec.volumes).filter((n) => !n.startsWith('kube-api-access-')), ['home-init', 'home-sidecar', 'vault-secrets'])
  const app = pod.spec.containers[0]
  t.ok(app.volumeMounts.some((m: Obj) => m.name === 'vault-secrets' && m.mountPath === '/vault/secrets'))
  t.equal(pod.metadata.annotations['vault.hashicorp.com/agent-inject-status'], 'injected')
  const agentToken = pod.spec.containers[1].volumeMounts.find((m: Obj) => m.mountPath.includes('serviceaccount'))
  t.match(agentToken.name, /^kube-api-access-/, 'the agents use the token the API server mounted')

  // Unchanged: stored exactly as the same pod is in kube-system, where the
  // webhook is not called (its namespaceSelector leaves kube-system out). The
  // opted-out pod does reach the webhook (it has the annotation).
  for (const [name, annotations] of [['plain', undefined], ['opted-out', { 'vault.hashicorp.com/agent-inject': 'false', 'vault.hashicorp.com/role': 'web' }]] as const) {
    const body: V1Pod = { metadata: { name, ...(annotations ? { annotations } : {}) }, spec: { serviceAccountName: 'web', containers: [{ name: 'app', image: 'a' }] } }
    const stored = await createPod(body)
    const control = (await core.createNamespacedPod({ namespace: 'kube-system', body })) as Obj
    t.same(comparable(stored), comparable(control), `${name}: stored unchanged`)
    t.same(names(stored.spec.containers), ['app'])
  }

  const native = await createPod(podSpec('native', inject({ 'vault-injector.dev/native-sidecar': 'true' })))
  t.equal(native.spec.initContainers[0].restartPolicy, 'Always', 'the API server accepts and keeps the native sidecar')
  t.ok(native.spec.initContainers[0].startupProbe.exec)

  const noToken = await createPod(podSpec('no-automount', inject(), { automountServiceAccountToken: false }))
  t.ok(noToken.spec.volumes.some((v: Obj) => v.name === 'vault-agent-token' && v.projected.sources[0].serviceAccountToken), 'projected token accepted')
})

t.test('a bad annotation is rejected and the client sees the engine\'s message', async (t) => {
  const body = await rejection(podSpec('bad', inject({ 'vault.hashicorp.com/agent-limits-cpu': 'lots' })))
  t.match(body, /admission webhook \\?"inject.vault-injector.dev\\?" denied the request: vault.hashicorp.com\/agent-limits-cpu: \\?"lots\\?" is not a Kubernetes quantity/)
})

t.test('policy: a denial and a warning reach the client', async (t) => {
  const denied = await rejection(podSpec('other-team', inject({ 'vault.hashicorp.com/role': 'payments' })))
  t.match(denied, /policy rule \\?"shop-only\\?": Vault role \\?"payments\\?" is not allowed in namespace e2e/)
  const warnings: string[] = []
  // client-node does not expose response headers: read the Warning header with a raw request.
  const pod = podSpec('warned', inject({ 'vault.hashicorp.com/agent-limits-mem': '' }))
  const kubeconfig = readFileSync(cp.kubeconfigPath, 'utf8')
  const cert = Buffer.from(/client-certificate-data: (\S+)/.exec(kubeconfig)![1]!, 'base64').toString()
  const key = Buffer.from(/client-key-data: (\S+)/.exec(kubeconfig)![1]!, 'base64').toString()
  const status = await new Promise<number>((resolve, reject) => {
    const req = https.request(`${cp.apiUrl}/api/v1/namespaces/${NS}/pods`, { method: 'POST', ca: cp.ca.certPem, cert, key, headers: { 'content-type': 'application/json' } }, (res) => {
      const header = res.headers.warning
      warnings.push(...(Array.isArray(header) ? header : header ? [header] : []))
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', ...pod }))
  })
  t.equal(status, 201, 'a warn rule does not block')
  t.match(warnings.join('\n'), /^299 - "policy rule \\"limits\\": agent CPU and memory limits must be set/, 'the API server passes the warning on (kubectl prints it)')
})

t.test('reinvocation: a later webhook adds a container, ours gives it the secrets and stays idempotent', async (t) => {
  // A second mutating webhook (name sorts after ours) that adds a container.
  const ca = generateCA({ commonName: 'adder CA', validityMs: 3_600_000 })
  const leaf = generateServingCert({ ca, hosts: ['127.0.0.1'], validityMs: 3_600_000 })
  let calls = 0
  const adder = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      calls++
      const review = JSON.parse(body) as Obj
      const pod = review.request.object as Obj
      const has = pod.spec.containers.some((c: Obj) => c.name === 'log-shipper')
      const patch = has ? [] : [{ op: 'add', path: '/spec/containers/-', value: { name: 'log-shipper', image: 'fluent-bit:3' } }]
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ apiVersion: review.apiVersion, kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true, ...(patch.length ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') } : {}) } }))
    })
  })
  const port = await freePort()
  await new Promise<void>((r) => adder.listen(port, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => adder.close(() => r())))
  const admission = cp.kubeConfig.makeApiClient(AdmissionregistrationV1Api)
  await admission.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: 'zz-log-shipper' },
      webhooks: [{ name: 'add.log-shipper.example.com', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail', reinvocationPolicy: 'IfNeeded', clientConfig: { url: `https://127.0.0.1:${port}/`, caBundle: Buffer.from(ca.certPem).toString('base64') }, rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }], namespaceSelector: { matchLabels: { team: 'shop' } } }],
    },
  })
  t.teardown(() => admission.deleteMutatingWebhookConfiguration({ name: 'zz-log-shipper' }).then(() => undefined))
  await new Promise((r) => setTimeout(r, 2000))
  const pod = await createPod(podSpec('reinvoked', inject()))
  t.ok(calls >= 1, 'the second webhook was called')
  t.same(names(pod.spec.containers), ['app', 'vault-agent', 'log-shipper'])
  t.same(names(pod.spec.initContainers), ['vault-agent-init'], 'one init agent, not two')
  const shipper = pod.spec.containers.find((c: Obj) => c.name === 'log-shipper')
  t.ok(shipper.volumeMounts?.some((m: Obj) => m.name === 'vault-secrets'), 'the container added later got the secrets volume on reinvocation')
  t.equal(pod.spec.volumes.filter((v: Obj) => v.name === 'vault-secrets').length, 1)
})

t.test('serving certificate rotation while pods are created: none lost', async (t) => {
  let created = 0
  const failures: string[] = []
  const creator = (async () => {
    for (let i = 0; i < 30; i++) {
      try {
        const pod = await createPod(podSpec(`rotation-${i}`, inject()))
        if (names(pod.spec.containers).includes('vault-agent')) created++
        else failures.push(`rotation-${i} not injected`)
      } catch (error) {
        failures.push(`rotation-${i}: ${(error as Error).message}`)
      }
    }
  })()
  await new Promise((r) => setTimeout(r, 300))
  injector.rotate()
  await new Promise((r) => setTimeout(r, 1000))
  const last = fingerprintOf(injector.rotate())
  await creator
  t.same(failures, [])
  t.equal(created, 30)
  // The rotation was real: the server now presents the last certificate, and
  // the API server still reaches it.
  await waitFor('the new certificate to be served', async () => (await servedFingerprint(injector.url, injector.ca.certPem)) === last, 30_000)
  const after = await createPod(podSpec('rotation-after', inject()))
  t.same(names(after.spec.containers), ['app', 'vault-agent'], 'injected with the new certificate')
})

t.test('with the webhook down, failurePolicy decides', async (t) => {
  await injector.stop()
  const failClosed = await rejection(podSpec('down-fail', inject()))
  t.match(failClosed, /failed calling webhook \\?"inject.vault-injector.dev\\?"/, 'Fail: creation rejected')
  const caFile = join(cp.dir, 'webhook-ca.crt')
  const r = await register(cp.kubeconfigPath, ['--url', `${injector.url}/mutate`, '--ca-file', caFile, '--failure-policy', 'Ignore', '--timeout-seconds', '5'])
  t.equal(r.code, 0, r.output)
  // Until the API server uses the new configuration: a dry run is admitted instead of refused.
  await waitFor('the API server to use failurePolicy Ignore', async () => {
    const created = await core.createNamespacedPod({ namespace: NS, body: podSpec('down-probe', inject()), dryRun: 'All' }).then(() => true, () => false)
    return created
  }, 30_000)
  const failOpen = await createPod(podSpec('down-ignore', inject()))
  t.same(names(failOpen.spec.containers), ['app'], 'Ignore: created without the agent')
  t.notOk(failOpen.metadata.annotations['vault.hashicorp.com/agent-inject-status'])
})
