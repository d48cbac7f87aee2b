// SecretProviderClass documents in CI: explain, test and inject judge them by
// the same policy rules as annotated pods.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

const root = new URL('../../', import.meta.url).pathname
function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin/vault-injector.js'), ...args], { encoding: 'utf8', cwd: root })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.test('explain: what a mount of the class would do, or which rule denies it', async (t) => {
  const ok = run(['explain', '-f', 'examples/csi/shop-class.yaml', '--policy', 'examples/policy/policy.yaml'])
  t.equal(ok.status, 0, ok.stderr)
  t.match(ok.stdout, 'SecretProviderClass shop/storefront-db (namespace shop): MOUNTED (CSI provider)\n  auth: kubernetes at auth/k8s-eu-west-1, role storefront; Vault https://vault.corp.example.com:8200\n  files:\n    db-password ← secret/data/shop/db (key password)\n    db-creds.json ← database/creds/shop-ro (whole response)')
  const denied = run(['explain', '-f', 'examples/csi/stolen-class.yaml', '--policy', 'examples/policy/policy.yaml'])
  t.match(denied.stdout, /DENIED\n  why: policy rule "shop-team": Vault role "payments" is not allowed in namespace shop/)
})

t.test('test: the CSI example suite passes', async (t) => {
  const r = run(['test', 'examples/csi/'])
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.match(r.stdout, /2 passed, 0 failed/)
})

t.test('inject: a denied class fails the run (exit 1) and is written unchanged; an allowed one passes through', async (t) => {
  const denied = run(['inject', '-f', 'examples/csi/stolen-class.yaml', '--policy', 'examples/policy/policy.yaml'])
  t.equal(denied.status, 1)
  t.match(denied.stderr, /document 1 \(SecretProviderClass shop\/payments-keys\): denied: policy rule "shop-team"/)
  t.match(denied.stdout, /# A class in the shop namespace/, 'unchanged, comments kept')
  const allowed = run(['inject', '-f', 'examples/csi/shop-class.yaml', '--policy', 'examples/policy/policy.yaml'])
  t.equal(allowed.status, 0, allowed.stderr)
  t.match(allowed.stdout, /# The shop team's SecretProviderClass/)
  t.notOk(run(['inject', '-f', 'examples/csi/shop-class.yaml']).status, 'without a policy')
})

t.test('csi-provider: a bad policy or key file is a usage error (exit 2) naming it', async (t) => {
  const noPolicy = run(['csi-provider', '--policy', '/nonexistent/policy.yaml', '--socket', '/tmp/unused.sock', '--no-kubernetes'])
  t.equal(noPolicy.status, 2)
  t.match(noPolicy.stderr, /vault-injector csi-provider: cannot read policy \/nonexistent\/policy.yaml/)
  const dir = t.testdir({ 'short.key': 'sixteen bytes!!!' })
  const shortKey = run(['csi-provider', '--hmac-key-file', join(dir, 'short.key'), '--socket', join(dir, 'vault.sock'), '--no-kubernetes'])
  t.equal(shortKey.status, 2)
  t.match(shortKey.stderr, /--hmac-key-file .*short.key: needs at least 32 bytes/)
})
