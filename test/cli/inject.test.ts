// `vault-injector inject` as a user runs it: a child process, files, stdin,
// exit codes.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'

const root = new URL('../../', import.meta.url).pathname
type Obj = Record<string, any>

function run(args: string[], input?: string, env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin/vault-injector.js'), ...args], { input, encoding: 'utf8', env: { ...process.env, ...env } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const pod = (annotations: Record<string, string>, name = 'web'): string => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  annotations: ${JSON.stringify({ 'vault.hashicorp.com/agent-inject': 'true', 'vault.hashicorp.com/role': 'web', ...annotations })}
spec:
  containers: [{name: web, image: nginx}]
`

t.test('--help lists the commands', async (t) => {
  const r = run(['--help'])
  t.equal(r.status, 0)
  t.match(r.stdout, /inject/)
  const inject = run(['inject', '--help'])
  t.match(inject.stdout, /--filename/)
  t.match(inject.stdout, /AGENT_INJECT_VAULT_ADDR/)
})

t.test('stdin in, YAML out, diagnostics on stderr', async (t) => {
  const r = run(['inject', '-f', '-'], pod({ 'vault.hashicorp.com/agent-inject-secret-db': 'secret/db' }))
  t.equal(r.status, 0, r.stderr)
  const out = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj)
  t.same(out[0]!.spec.containers.map((c: Obj) => c.name), ['web', 'vault-agent'])
  t.match(r.stderr, /document 1 \(Pod web\): injected init\+sidecar with 1 secret/)
})

t.test('a denied document: reported with index, kind, name and reason; exit 1; written unchanged', async (t) => {
  const input = pod({}, 'good') + '---\n' + pod({ 'vault.hashicorp.com/agent-limits-cpu': 'lots' }, 'bad')
  const r = run(['inject', '-f', '-'], input)
  t.equal(r.status, 1)
  t.match(r.stderr, 'document 2 (Pod bad): denied: vault.hashicorp.com/agent-limits-cpu: "lots" is not a Kubernetes quantity (e.g. 500m, 1)')
  const out = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj)
  t.equal(out.length, 2)
  t.same(out[1]!.spec.containers.map((c: Obj) => c.name), ['web'], 'denied document unchanged')
})

t.test('directories, JSON output, --namespace, settings from env and flags', async (t) => {
  const dir = t.testdir({ 'a.yaml': pod({}, 'a'), 'b.json': JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }), 'notes.txt': 'ignored' })
  const r = run(['inject', '-f', dir, '-o', 'json', '--namespace', 'kube-system'], undefined, {})
  t.equal(r.status, 1, 'kube-system is denied')
  t.match(r.stderr, /cannot inject into system namespaces: kube-system/)
  const ok = run(['inject', '-f', dir, '-o', 'json', '--cpu-limit', '2'], undefined, { AGENT_INJECT_VAULT_IMAGE: 'hashicorp/vault:9.9.9' })
  t.equal(ok.status, 0, ok.stderr)
  const list = JSON.parse(ok.stdout) as Obj
  t.equal(list.kind, 'List')
  t.equal(list.items.length, 2)
  const agent = list.items[0].spec.containers[1]
  t.equal(agent.image, 'hashicorp/vault:9.9.9')
  t.equal(agent.resources.limits.cpu, '2')
  t.same(list.items[1], { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } })
})

t.test('usage and input errors exit 2', async (t) => {
  t.equal(run(['inject']).status, 2, 'no -f')
  t.equal(run(['inject', '-f', '-', '-o', 'xml']).status, 2, 'bad output format')
  const missing = run(['inject', '-f', '/no/such/file.yaml'])
  t.equal(missing.status, 2)
  t.match(missing.stderr, /cannot read \/no\/such\/file.yaml: ENOENT/)
  const broken = run(['inject', '-f', '-'], 'kind: Pod\n  bad: [indent\n')
  t.equal(broken.status, 2)
  t.match(broken.stderr, /stdin: document 1 is not valid YAML or JSON/)
  const badSetting = run(['inject', '-f', '-'], pod({}), { AGENT_INJECT_REVOKE_ON_SHUTDOWN: 'sometimes' })
  t.equal(badSetting.status, 2)
  t.match(badSetting.stderr, /AGENT_INJECT_REVOKE_ON_SHUTDOWN: "sometimes" is not a boolean/)
})
