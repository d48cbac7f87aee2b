// Injected pods as a cluster runs them: created through the e2e kube-apiserver
// (so through vault-injector's webhook), scheduled by kube-scheduler onto a real
// kubelet over containerd and runc, and observed only through the API server,
// as a user would with kubectl: phase and conditions, container logs, the
// files the app reads. Vault is a real dev server with Kubernetes auth that the
// pods reach on the node's bridge (run by test/kubelet/run.sh).
import t from 'tap'
import { AppsV1Api, BatchV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { register, startControlPlane, startInjector, waitFor, waitForWebhook, type ControlPlane, type Injector } from '../e2e/harness.ts'
import { startVault, type DevVault } from '../e2e/vault.ts'
import { BRIDGE_GATEWAY, createBridge, startNode, type Node } from './node.ts'

type Obj = Record<string, any>
const NS = 'shop'
const APP_IMAGE = 'vault-injector.dev/e2e-app:1'
// Every wait is bounded: a pod that never gets there fails with what it shows.
const POD_WAIT_MS = 120_000

const images = process.env.VAULT_INJECTOR_KUBELET_IMAGES
if (!images) {
  t.plan(0, 'run through `npm run test:kubelet` (test/kubelet/run.sh builds the images and the node)')
  process.exit(0)
}

let cp: ControlPlane
let node: Node
let vault: DevVault
let injector: Injector
let vaultAddr = ''
let core: CoreV1Api
const vaultApi = (method: string, path: string, body?: unknown): Promise<Obj> => vault.api(method, path, body)

t.before(async () => {
  cp = await startControlPlane()
  core = cp.kubeConfig.makeApiClient(CoreV1Api)
  createBridge()
  node = await startNode(cp, readdirSync(images).map((file) => join(images, file)))

  await core.createNamespace({ body: { metadata: { name: NS, labels: { team: 'shop' } } } })
  await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'app' } } })
  // Vault listens on the bridge's host side, where the pods reach it.
  vault = await startVault(cp, NS, BRIDGE_GATEWAY)
  vaultAddr = vault.address
  await vaultApi('PUT', 'sys/policies/acl/app', { policy: 'path "secret/data/app/*" { capabilities = ["read"] }' })
  await vaultApi('POST', 'auth/kubernetes/role/app', { bound_service_account_names: ['app'], bound_service_account_namespaces: [NS], policies: ['app'], ttl: '1h' })
  await vaultApi('POST', 'auth/kubernetes/role/app-aud', { bound_service_account_names: ['app'], bound_service_account_namespaces: [NS], audience: 'vault', policies: ['app'], ttl: '1h' })
  // A role that exists in Vault but that the policy does not allow in this namespace.
  await vaultApi('POST', 'auth/kubernetes/role/payments', { bound_service_account_names: ['app'], bound_service_account_namespaces: [NS], policies: ['app'], ttl: '1h' })
  await vaultApi('POST', 'secret/data/app/db', { data: { password: 'first-s3cret' } })
  await vaultApi('POST', 'secret/data/app/api', { data: { key: 'api-k3y' } })

  const policy = join(cp.dir, 'policy.yaml')
  writeFileSync(
    policy,
    [
      'apiVersion: vault-injector.dev/v1alpha1',
      'kind: InjectorPolicy',
      'metadata: {name: kubelet-e2e}',
      'spec:',
      '  rules:',
      '    - name: shop-roles',
      '      namespaces: {selector: {matchLabels: {team: shop}}}',
      '      allow: {roles: ["app", "app-aud", "nobody"]}',
      // Applied only where the webhook knows the namespace's labels (its watch has seen "team: shop").
      '      defaults: {vault.hashicorp.com/agent-limits-mem: 96Mi}',
      '',
    ].join('\n'),
  )
  // With the kubeconfig it watches namespace labels for the policy's selector, as in a cluster.
  injector = await startInjector(cp.dir, { AGENT_INJECT_VAULT_ADDR: vaultAddr, AGENT_INJECT_POLICY_FILE: policy, KUBECONFIG: cp.kubeconfigPath })
  const caFile = join(cp.dir, 'webhook-ca.crt')
  writeFileSync(caFile, injector.ca.certPem)
  const r = await register(cp.kubeconfigPath, ['--url', `${injector.url}/mutate`, '--ca-file', caFile, '--failure-policy', 'Fail', '--timeout-seconds', '10'])
  if (r.code !== 0) throw new Error(r.output)
  await waitForWebhook(cp, NS, 'app', 'app')
})

t.teardown(async () => {
  await injector?.stop()
  await node?.stop()
  await vault?.stop()
  await cp?.stop()
})

const inject = (secrets: Record<string, string>, extra: Record<string, string> = {}): Record<string, string> => {
  const out: Record<string, string> = { 'vault.hashicorp.com/agent-inject': 'true', 'vault.hashicorp.com/role': 'app', ...extra }
  for (const [name, path] of Object.entries(secrets)) out[`vault.hashicorp.com/agent-inject-secret-${name}`] = path
  return out
}

function app(name: string, script: string, extra: Obj = {}): { name: string } & Obj {
  return { name, image: APP_IMAGE, command: ['/bin/sh', '-c', script], ...extra }
}

async function podsOf(selector: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace: NS, labelSelector: selector })).items
}

// What `kubectl describe` would show of a pod that did not get where expected.
function describe(pod: V1Pod | undefined): string {
  if (!pod) return 'no pod'
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].map((s) => `${s.name}: ${JSON.stringify(s.state)}`)
  return `phase ${pod.status?.phase}; conditions ${JSON.stringify(pod.status?.conditions?.map((c) => `${c.type}=${c.status}`))}; ${statuses.join('; ')}`
}

async function waitForPod(what: string, read: () => Promise<V1Pod | undefined>, done: (pod: V1Pod) => boolean): Promise<V1Pod> {
  let last: V1Pod | undefined
  await waitFor(what, async () => {
    last = await read()
    return last !== undefined && done(last)
  }, POD_WAIT_MS).catch((error: Error) => {
    throw new Error(`${error.message}: ${describe(last)}`)
  })
  return last!
}

const ready = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false
const phase = (want: string) => (pod: V1Pod): boolean => pod.status?.phase === want

async function logs(pod: string, container: string): Promise<string> {
  return await core.readNamespacedPodLog({ namespace: NS, name: pod, container }).catch((error: Error) => `(no log: ${error.message})`)
}

async function createPod(name: string, annotations: Record<string, string>, spec: Obj): Promise<Obj> {
  return (await core.createNamespacedPod({ namespace: NS, body: { metadata: { name, annotations }, spec: { serviceAccountName: 'app', containers: [], ...spec } } })) as Obj
}

const readPod = (name: string) => () => core.readNamespacedPod({ namespace: NS, name }).catch(() => undefined)

const DB_TEMPLATE = '{{ with secret "secret/data/app/db" }}password={{ .Data.data.password }}{{ end }}'

t.test('a Deployment\'s pod: the init agent renders two secrets, the app reads them and is Ready; a change in Vault reaches the app', async (t) => {
  const apps = cp.kubeConfig.makeApiClient(AppsV1Api)
  // The app prints each secret when it first sees it and whenever it changes.
  const watch = 'last=""; while true; do now="$(cat /vault/secrets/db) $(cat /vault/secrets/api)"; if [ "$now" != "$last" ]; then echo "seen: $now"; last="$now"; fi; sleep 1; done'
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: {
      metadata: { name: 'web' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: {
            labels: { app: 'web' },
            annotations: inject(
              { db: 'secret/data/app/db', api: 'secret/data/app/api' },
              { 'vault.hashicorp.com/agent-inject-template-db': DB_TEMPLATE, 'vault.hashicorp.com/agent-inject-template-api': '{{ with secret "secret/data/app/api" }}key={{ .Data.data.key }}{{ end }}', 'vault.hashicorp.com/template-static-secret-render-interval': '2s' },
            ),
          },
          spec: {
            serviceAccountName: 'app',
            containers: [app('web', watch, { readinessProbe: { exec: { command: ['test', '-s', '/vault/secrets/db'] }, periodSeconds: 1 } })],
          },
        },
      },
    },
  })
  const pod = await waitForPod('the Deployment\'s pod to be Ready', async () => (await podsOf('app=web'))[0], ready)
  const name = pod.metadata!.name!
  t.match(name, /^web-[a-z0-9]+-[a-z0-9]{5}$/, 'a pod made by the Deployment\'s ReplicaSet')
  t.same(pod.spec!.initContainers!.map((c) => c.name), ['vault-agent-init'], 'the init agent ran before the app')
  t.same(pod.spec!.containers.map((c) => c.name), ['web', 'vault-agent'], 'the sidecar agent runs beside the app')
  t.equal(pod.spec!.containers[1]!.resources?.limits?.memory, '96Mi', 'the namespace default of the rule that selects the namespace by label: the webhook\'s watch knew its labels')
  t.equal(pod.status!.initContainerStatuses![0]!.state?.terminated?.exitCode, 0, 'the init agent exited 0')
  await waitFor('the app to print the secrets', async () => (await logs(name, 'web')).includes('seen: password=first-s3cret key=api-k3y'), 30_000)
  t.pass('the app read both rendered secrets from /vault/secrets')

  await vaultApi('POST', 'secret/data/app/db', { data: { password: 'rotated-s3cret' } })
  await waitFor('the sidecar to re-render and the app to see it', async () => (await logs(name, 'web')).includes('seen: password=rotated-s3cret key=api-k3y'), 60_000).catch(async (error: Error) => {
    throw new Error(`${error.message}\napp: ${await logs(name, 'web')}\nagent: ${(await logs(name, 'vault-agent')).slice(-1500)}`)
  })
  t.pass('the sidecar re-rendered the changed secret and the app read the new value')
})

t.test('a Job with a native sidecar agent completes; so does one with the init agent only', async (t) => {
  const batch = cp.kubeConfig.makeApiClient(BatchV1Api)
  const job = (name: string, annotations: Record<string, string>): Obj => ({
    metadata: { name },
    spec: {
      backoffLimit: 0,
      template: { metadata: { labels: { job: name }, annotations }, spec: { serviceAccountName: 'app', restartPolicy: 'Never', containers: [app('work', 'cat /vault/secrets/db; echo; echo done')] } as Obj },
    },
  })
  const secrets = { db: 'secret/data/app/db' }
  const template = { 'vault.hashicorp.com/agent-inject-template-db': DB_TEMPLATE }
  await batch.createNamespacedJob({ namespace: NS, body: job('native', inject(secrets, { ...template, 'vault-injector.dev/native-sidecar': 'true' })) })
  await batch.createNamespacedJob({ namespace: NS, body: job('init-only', inject(secrets, { ...template, 'vault.hashicorp.com/agent-pre-populate-only': 'true' })) })
  for (const name of ['native', 'init-only']) {
    const pod = await waitForPod(`the ${name} Job's pod to succeed`, async () => (await podsOf(`job=${name}`))[0], phase('Succeeded'))
    t.match(await logs(pod.metadata!.name!, 'work'), /password=(first|rotated)-s3cret\ndone/, `${name}: the job read the secret and finished`)
    if (name === 'native') {
      const sidecar = pod.spec!.initContainers!.find((c) => c.name === 'vault-agent')
      t.equal(sidecar?.restartPolicy, 'Always', 'native: the agent ran as a native sidecar (an init container with restartPolicy Always)')
    } else {
      t.same(pod.spec!.containers.map((c) => c.name), ['work'], 'init-only: no sidecar')
    }
    await waitFor(`the ${name} Job to be complete`, async () => ((await batch.readNamespacedJob({ namespace: NS, name })).status?.succeeded ?? 0) === 1, 60_000)
    t.pass(`${name}: the Job controller counts the Job succeeded`)
  }
})

t.test('init-first, inject-containers, a projected token with automount off and the agent\'s securityContext, as the kubelet runs them', async (t) => {
  // An app init container reads the secret: only possible when the agent's init runs first.
  await createPod('init-first', inject({ db: 'secret/data/app/db' }, { 'vault.hashicorp.com/agent-init-first': 'true', 'vault.hashicorp.com/agent-pre-populate-only': 'true' }), {
    restartPolicy: 'Never',
    initContainers: [app('setup', 'test -s /vault/secrets/db && echo setup-saw-secret')],
    containers: [app('main', 'echo main-ran')],
  })
  // Only "reader" gets the secrets volume; "other" must not see it.
  await createPod('some-containers', inject({ db: 'secret/data/app/db' }, { 'vault.hashicorp.com/agent-inject-containers': 'reader', 'vault.hashicorp.com/agent-pre-populate-only': 'true' }), {
    restartPolicy: 'Never',
    containers: [app('reader', 'test -s /vault/secrets/db && echo reader-has-secret'), app('other', 'if [ -e /vault/secrets ]; then echo other-has-secrets; exit 1; fi; echo other-has-none')],
  })
  // No service-account token in the pod: the agents log in with their own projected, audience-bound token.
  await createPod('projected', inject({ db: 'secret/data/app/db' }, { 'vault.hashicorp.com/role': 'app-aud', 'vault-injector.dev/token-audience': 'vault', 'vault.hashicorp.com/agent-pre-populate-only': 'true' }), {
    restartPolicy: 'Never',
    automountServiceAccountToken: false,
    containers: [app('app', 'test -s /vault/secrets/db && echo projected-ok; test -e /var/run/secrets/kubernetes.io/serviceaccount/token && echo app-has-token || echo app-has-no-token')],
  })
  // The agent runs as the user the annotation names; the rendered file shows it.
  await createPod('security', inject({ db: 'secret/data/app/db' }, { 'vault.hashicorp.com/agent-run-as-user': '4321', 'vault.hashicorp.com/agent-run-as-group': '4321', 'vault.hashicorp.com/agent-pre-populate-only': 'true' }), {
    restartPolicy: 'Never',
    // The secrets volume is memory (emptyDir medium Memory): the kubelet mounts a tmpfs.
    containers: [app('app', 'stat -c "owner=%u:%g" /vault/secrets/db; awk \'$2 == "/vault/secrets" { print "fs=" $3 }\' /proc/mounts')],
  })

  const cases: [string, string, RegExp][] = [
    ['init-first', 'setup', /setup-saw-secret/],
    ['some-containers', 'reader', /reader-has-secret/],
    ['some-containers', 'other', /other-has-none/],
    ['projected', 'app', /projected-ok\napp-has-no-token/],
    ['security', 'app', /owner=4321:4321\nfs=tmpfs/],
  ]
  for (const [pod, container, expected] of cases) {
    const seen = await waitForPod(`pod ${pod} to succeed`, readPod(pod), phase('Succeeded'))
    t.match(await logs(pod, container), expected, `${pod}/${container}: ${expected.source}`)
    if (pod === 'init-first') t.same(seen.spec!.initContainers!.map((c) => c.name), ['vault-agent-init', 'setup'], 'init-first: the agent is the first init container')
  }
})

t.test('a role Vault does not know: the init agent shows Vault\'s error and keeps the app from starting (and fails the pod with exit-on-err); a role the policy forbids: the webhook denies the pod', async (t) => {
  // vault-k8s's default: the agent retries the login, so the pod waits in Init with the error in the agent's log.
  await createPod('wrong-role', inject({ db: 'secret/data/app/db' }, { 'vault.hashicorp.com/role': 'nobody', 'vault.hashicorp.com/agent-pre-populate-only': 'true' }), {
    restartPolicy: 'Never',
    containers: [app('app', 'cat /vault/secrets/db')],
  })
  // agent-auto-auth-exit-on-err: the agent gives up, the init container fails and so does the pod.
  await createPod('wrong-role-exit', inject({ db: 'secret/data/app/db' }, { 'vault.hashicorp.com/role': 'nobody', 'vault.hashicorp.com/agent-pre-populate-only': 'true', 'vault.hashicorp.com/agent-auto-auth-exit-on-err': 'true' }), {
    restartPolicy: 'Never',
    containers: [app('app', 'cat /vault/secrets/db')],
  })
  const vaultError = /invalid role name|permission denied/
  await waitFor('Vault\'s error in the retrying init agent\'s log', async () => vaultError.test(await logs('wrong-role', 'vault-agent-init')), POD_WAIT_MS)
  const waiting = await readPod('wrong-role')()
  t.equal(waiting?.status?.phase, 'Pending', 'default: the pod stays Pending while the agent retries')
  t.ok(waiting?.status?.initContainerStatuses?.[0]?.state?.running, 'default: the init agent is still running')
  t.equal(waiting?.status?.containerStatuses?.[0]?.state?.waiting?.reason, 'PodInitializing', 'default: the app never started')

  const pod = await waitForPod('the exit-on-err init agent to fail the pod', readPod('wrong-role-exit'), phase('Failed'))
  t.not(pod.status!.initContainerStatuses![0]!.state?.terminated?.exitCode ?? 0, 0, 'exit-on-err: the init agent exited non-zero')
  t.match(await logs('wrong-role-exit', 'vault-agent-init'), vaultError, 'exit-on-err: its log carries Vault\'s answer')
  t.notOk(pod.status?.containerStatuses?.some((c) => c.state?.running || c.state?.terminated), 'exit-on-err: the app never started')

  const denied = await createPod('forbidden-role', inject({ db: 'secret/data/app/db' }, { 'vault.hashicorp.com/role': 'payments' }), { containers: [app('app', 'sleep 1')] }).then(
    () => '',
    (error: Error & { body?: string }) => String(error.body ?? error.message),
  )
  t.match(denied, /payments/, 'the API server refused the pod with vault-injector\'s denial naming the role')
})
