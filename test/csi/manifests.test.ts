// manifests/csi-provider: the DaemonSet runs the command with flags it has,
// puts the socket where the driver looks, keeps its security promises, and
// the component builds on top of the injector with kustomize.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { buildProgram } from '../../src/cli.ts'

type Obj = Record<string, any>
const root = new URL('../../', import.meta.url).pathname
const dir = join(root, 'manifests/csi-provider')
const load = (file: string): Obj[] => parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => d.toJS() as Obj).filter(Boolean)

t.test('the DaemonSet: known flags, the driver\'s provider folder, no capabilities, resources', async (t) => {
  const [ds] = load('daemonset.yaml') as [Obj]
  const pod = ds.spec.template.spec
  const container = pod.containers[0]
  const program = await buildProgram(['node', 'vault-injector', 'csi-provider'])
  const command = program.commands.find((c) => c.name() === 'csi-provider')!
  const flags = new Set(command.options.map((o) => o.long))
  t.equal(container.args[0], 'csi-provider')
  for (const arg of container.args.slice(1)) t.ok(flags.has(arg.split('=')[0]), `${arg} is a csi-provider flag`)
  const providerDir = container.args.find((a: string) => a.startsWith('--provider-dir='))!.split('=')[1]
  t.equal(providerDir, '/etc/kubernetes/secrets-store-csi-providers', 'where the driver looks for <provider>.sock')
  const volume = pod.volumes.find((v: Obj) => v.name === container.volumeMounts[0].name)
  t.same(volume.hostPath, { path: providerDir, type: 'DirectoryOrCreate' })
  t.equal(container.volumeMounts[0].mountPath, providerDir)
  t.same(container.securityContext.capabilities, { drop: ['ALL'] })
  t.equal(container.securityContext.allowPrivilegeEscalation, false)
  t.equal(container.securityContext.readOnlyRootFilesystem, true)
  t.ok(container.resources.requests.cpu && container.resources.requests.memory && container.resources.limits.memory)
  t.equal(container.readinessProbe.httpGet.port, 'health')
  t.same(container.ports, [{ name: 'health', containerPort: 8080 }])
  t.equal(pod.serviceAccountName, load('serviceaccount.yaml')[0]!.metadata.name)
})

t.test('RBAC: namespaces read-only; no right to mint tokens unless uncommented', async (t) => {
  const [role, binding] = load('rbac.yaml') as [Obj, Obj]
  t.same(role.rules, [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] }])
  t.match(readFileSync(join(dir, 'rbac.yaml'), 'utf8'), /# - apiGroups: \[""\]\n {2}# {3}resources: \["serviceaccounts\/token"\]/)
  t.same(binding.subjects, [{ kind: 'ServiceAccount', name: 'vault-injector-csi-provider', namespace: 'vault-injector' }])
})

const kustomize = join(process.env.VAULT_INJECTOR_E2E_CACHE ?? join(process.env.HOME ?? '/root', '.cache/vault-injector-e2e'), 'bin/kustomize')
t.test('kustomize: the component on top of the injector', { skip: existsSync(kustomize) ? false : 'no kustomize in the e2e cache (test/e2e/build.sh)' }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'csi-kustomize-'))
  // Relative paths out of the kustomization's folder need LoadRestrictionsNone.
  const build = (components: string[]): Obj[] => {
    writeFileSync(join(work, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [${relative(work, join(root, 'manifests'))}]\ncomponents: [${components.map((c) => relative(work, c)).join(', ')}]\n`)
    const r = spawnSync(kustomize, ['build', '--load-restrictor', 'LoadRestrictionsNone', work], { encoding: 'utf8' })
    t.equal(r.status, 0, r.stderr)
    return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj)
  }
  const restartEnv = (objects: Obj[]): boolean => objects.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].env.some((e: Obj) => e.name === 'AGENT_INJECT_CSI_RESTART_ON_ROTATION' && e.value === 'true')
  const provider = build([dir])
  const kinds = provider.map((o) => `${o.kind}/${o.metadata.name}`)
  t.ok(kinds.includes('Deployment/vault-injector'))
  t.ok(kinds.includes('DaemonSet/vault-injector-csi-provider'))
  t.notOk(provider.some((o) => o.metadata.name === 'vault-injector-csi-restart'), 'the provider alone: no restart RBAC (no patch on workloads)')
  t.notOk(restartEnv(provider), 'and the webhook rolls nothing')
  const restart = build([dir, join(root, 'manifests/csi-restart')])
  const rules = restart.find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'vault-injector-csi-restart')!.rules
  t.same(rules.filter((r: Obj) => r.verbs.includes('patch')), [{ apiGroups: ['apps'], resources: ['deployments', 'statefulsets', 'daemonsets'], verbs: ['get', 'patch'] }], 'with manifests/csi-restart: patch on the three workload kinds, nothing else patched')
  t.ok(restartEnv(restart), 'the webhook rolls workloads on rotation')
  const pod = restart.find((o) => o.kind === 'DaemonSet')!.spec.template.spec
  t.ok(pod.containers[0].args.includes('--hmac-key-file=/etc/vault-injector/csi-hmac/key'), 'and the provider keeps its versions across restarts with a fixed HMAC key')
  t.same(pod.volumes.find((v: Obj) => v.name === 'hmac'), { name: 'hmac', secret: { secretName: 'vault-injector-csi-hmac' } })
  t.equal(spawnSync(kustomize, ['build', dir], { encoding: 'utf8' }).status, 0, 'the component alone builds too')
})
