// manifests/ (the kustomize base, auto-TLS) installed into a namespace of the
// user's choosing: an overlay with `namespace: vault`, built by the real
// kustomize, applied to the e2e API server, and the Deployment run as pods
// would run it (workloads.ts). Nothing in the base names its namespace where
// kustomize cannot rewrite it: the certificate's names come from NAMESPACE
// (the downward API) at run time, and the webhook keeps the injector's own
// pods out by label. The API server calls the webhook by Service, verifies
// the certificate for vault-injector.vault.svc, and a pod is injected.
import t from 'tap'
import { CoordinationV1Api, CoreV1Api, type KubernetesObject } from '@kubernetes/client-node'
import { spawnSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { BIN, ROOT, startControlPlane, waitFor, type ControlPlane } from './harness.ts'
import { apply, canRunPods, createUntilInjected, runDeployment, type Pod } from './workloads.ts'

type Obj = Record<string, any>
const NS = 'vault'
const APP_NS = 'shop'
const KUSTOMIZE = join(BIN, 'kustomize')

const skip = canRunPods() ?? (existsSync(KUSTOMIZE) ? undefined : `kustomize was not built (${KUSTOMIZE})`)
let cp: ControlPlane
let pods: Pod[] = []

t.before(async () => {
  if (skip) return
  cp = await startControlPlane()
})
t.teardown(async () => {
  for (const p of pods) await p.stop()
  await cp?.stop()
})

// A missing kustomize fails the run (the install path is checked in CI).
t.test('kustomize is built (test/e2e/build.sh)', async (t) => {
  t.ok(existsSync(KUSTOMIZE), KUSTOMIZE)
})

t.test('kubectl apply -k of an overlay with namespace: vault: the certificate names vault-injector.vault.svc and a pod is injected', { skip }, async (t) => {
  const overlay = join(cp.dir, 'overlay')
  mkdirSync(overlay)
  writeFileSync(join(overlay, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ${NS}\nresources:\n  - ${relative(overlay, join(ROOT, 'manifests'))}\n`)
  const built = spawnSync(KUSTOMIZE, ['build', overlay], { encoding: 'utf8' })
  t.equal(built.status, 0, built.stderr || 'kustomize build')
  const objects = parseAllDocuments(built.stdout).map((d) => d.toJS() as KubernetesObject)
  t.notMatch(built.stdout, /vault-injector\.vault-injector|namespace: vault-injector/, 'the built objects name no other namespace')

  const core = cp.kubeConfig.makeApiClient(CoreV1Api)
  await apply(cp, objects)
  await core.createNamespace({ body: { metadata: { name: APP_NS } } })
  await core.createNamespacedServiceAccount({ namespace: APP_NS, body: { metadata: { name: 'default' } } })
  pods = await runDeployment(cp, NS, 'vault-injector', 'vault-injector')
  t.equal(pods.length, 2)
  await waitFor('both replicas ready', async () => pods.every((p) => p.ready()), 60_000)

  const secret = await core.readNamespacedSecret({ name: 'vault-injector-certs', namespace: NS })
  const cert = new X509Certificate(Buffer.from(secret.data!['tls.crt']!, 'base64'))
  t.equal(cert.checkHost('vault-injector.vault.svc'), 'vault-injector.vault.svc', 'the serving certificate names the Service in vault')
  const holder = (await cp.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'vault-injector-leader', namespace: NS })).spec?.holderIdentity
  t.ok(pods.some((p) => p.name === holder), `the Lease in vault names a replica (${holder})`)

  const { pod } = await createUntilInjected(cp, APP_NS, 'kustomize', pods)
  t.same((pod as Obj).spec.containers.map((c: Obj) => c.name), ['app', 'vault-agent'], 'a pod is injected through the Service in vault')
  for (const p of pods) t.notMatch(p.output(), /"level":50|forbidden/i, `${p.name}: no RBAC refusal, no error logged`)
})
