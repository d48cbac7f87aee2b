// `vault-injector register` as a user runs it: --dry-run output, option
// errors, and create-then-update against the fake API through a kubeconfig.
import t from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { buildWebhookConfiguration, DEFAULT_WEBHOOK_OPTIONS, MATCH_CONDITION_EXPRESSION } from '../../src/kube/webhook-config.ts'
import { generateCA } from '../../src/tls/ca.ts'
import { startFakeApi } from '../helpers/fake-api.ts'

type Obj = Record<string, any>
const root = new URL('../../', import.meta.url).pathname
const MWC = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/vault-injector'

// Asynchronous, so the fake API in this process keeps answering.
function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(root, 'bin/vault-injector.js'), 'register', ...args], { cwd: root, env: { ...process.env, KUBECONFIG: '/nonexistent', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr })
    })
  })
}

t.test('--dry-run prints the shipped configuration and touches no cluster', async (t) => {
  const r = await run(['--dry-run'])
  t.equal(r.code, 0, r.stderr)
  t.same(parse(r.stdout), JSON.parse(JSON.stringify(buildWebhookConfiguration(DEFAULT_WEBHOOK_OPTIONS))))
})

t.test('--dry-run for a server outside the cluster: url, caBundle from a file, Fail, timeout, no match conditions', async (t) => {
  const dir = t.testdir({ 'ca.crt': generateCA({ commonName: 'test CA', validityMs: 3_600_000 }).certPem })
  const r = await run(['--dry-run', '--url', 'https://127.0.0.1:8443/mutate', '--ca-file', join(dir, 'ca.crt'), '--failure-policy', 'Fail', '--timeout-seconds', '3', '--name', 'e2e', '--no-match-conditions'])
  t.equal(r.code, 0, r.stderr)
  const config = parse(r.stdout) as Obj
  t.equal(config.metadata.name, 'e2e')
  const hook = config.webhooks[0]
  t.same(hook.clientConfig.url, 'https://127.0.0.1:8443/mutate')
  t.notOk(hook.clientConfig.service)
  t.match(Buffer.from(hook.clientConfig.caBundle, 'base64').toString(), /^-----BEGIN CERTIFICATE-----/)
  t.equal(hook.failurePolicy, 'Fail')
  t.equal(hook.timeoutSeconds, 3)
  t.notOk(hook.matchConditions, 'every pod is sent')
  t.equal(hook.sideEffects, 'None', 'the rest is unchanged')
})

t.test('option mistakes exit 2 with a message naming the option', async (t) => {
  const dir = t.testdir({ 'not-a-ca.pem': 'hello\n' })
  const cases: [string[], RegExp][] = [
    [['--timeout-seconds', '60'], /--timeout-seconds: "60" is not accepted \(1-30\)/],
    [['--service-port', 'https'], /--service-port: "https" is not a port number/],
    [['--url', 'http://127.0.0.1:8080/mutate'], /--url: .* must be an https:\/\/ URL/],
    [['--url', 'https://user:pw@example.com/mutate'], /--url: .* without user/],
    [['--ca-file', join(dir, 'not-a-ca.pem')], /--ca-file: .* holds no PEM certificate/],
    [['--ca-file', join(dir, 'missing.pem')], /--ca-file: ENOENT/],
    [['--failure-policy', 'Sometimes'], /Allowed choices are Ignore, Fail/],
  ]
  const results = await Promise.all(cases.map(([args]) => run(['--dry-run', ...args])))
  cases.forEach(([args, message], i) => {
    const r = results[i]!
    t.equal(r.code, 2, args.join(' '))
    t.match(r.stderr, message)
    t.equal(r.stdout, '')
  })
})

t.test('without a cluster, register says so and exits 1 (and never tries client-node\'s localhost:8080 fallback)', async (t) => {
  const [none, missing] = await Promise.all([run([], { KUBECONFIG: '', HOME: '/nonexistent' }), run([], { KUBECONFIG: '/nonexistent' })])
  t.equal(none.code, 1)
  t.match(none.stderr, /no Kubernetes cluster configured/)
  t.equal(missing.code, 1)
  t.match(missing.stderr, /could not load the kubeconfig \(KUBECONFIG=\/nonexistent\)/)
})

t.test('creates the configuration, then updates it keeping the caBundle and annotations others manage', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  const dir = t.testdir({})
  writeFileSync(join(dir, 'kubeconfig'), api.kubeConfig.exportConfig())
  const env = { KUBECONFIG: join(dir, 'kubeconfig') }

  const created = await run([], env)
  t.equal(created.code, 0, created.stderr)
  t.equal(created.stdout, 'mutatingwebhookconfiguration/vault-injector created\n')
  const stored = api.objects.get(MWC)!
  t.equal(stored.webhooks[0].matchConditions[0].expression, MATCH_CONDITION_EXPRESSION)
  t.notOk(stored.webhooks[0].clientConfig.caBundle, 'no caBundle: auto-TLS or cert-manager fills it in')

  // auto-TLS sets the caBundle; someone annotates the object.
  api.put(MWC, {
    ...stored,
    metadata: { ...stored.metadata, annotations: { 'cert-manager.io/inject-ca-from': 'vault-injector/vault-injector-serving' } },
    webhooks: stored.webhooks.map((w: Obj) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: 'Q0E=' } })),
  })
  const updated = await run(['--timeout-seconds', '3', '--failure-policy', 'Fail'], env)
  t.equal(updated.code, 0, updated.stderr)
  t.equal(updated.stdout, 'mutatingwebhookconfiguration/vault-injector updated\n')
  const after = api.objects.get(MWC)!
  t.equal(after.webhooks[0].timeoutSeconds, 3)
  t.equal(after.webhooks[0].failurePolicy, 'Fail')
  t.equal(after.webhooks[0].clientConfig.caBundle, 'Q0E=', 'caBundle kept')
  t.equal(after.metadata.annotations['cert-manager.io/inject-ca-from'], 'vault-injector/vault-injector-serving', 'annotation kept')
  t.equal(after.metadata.labels['app.kubernetes.io/name'], 'vault-injector')
  t.ok(api.requests.some((r) => r.method === 'PUT' && r.path === MWC), 'a replace guarded by the version read')

  // --ca-from-secret: the auto-TLS CA, with the previous one during a rollover.
  const b64 = (s: string): string => Buffer.from(s).toString('base64')
  const [ca, previous] = [generateCA({ commonName: 'new', validityMs: 3_600_000 }), generateCA({ commonName: 'old', validityMs: 3_600_000 })]
  api.put('/api/v1/namespaces/vault-injector/secrets/vault-injector-certs', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'vault-injector-certs', namespace: 'vault-injector' }, data: { 'ca.crt': b64(ca.certPem), 'ca-previous.crt': b64(previous.certPem) } })
  const fromSecret = await run(['--ca-from-secret', '--dry-run'], env)
  t.equal(fromSecret.code, 0, fromSecret.stderr)
  t.equal(Buffer.from((parse(fromSecret.stdout) as Obj).webhooks[0].clientConfig.caBundle, 'base64').toString(), ca.certPem + previous.certPem)
})

t.test('docs/deploy.md names every register option, and no option register lacks', async (t) => {
  const { Command } = await import('commander')
  const { register } = await import('../../src/cli/register.ts')
  const program = new Command()
  register(program)
  const options = program.commands[0]!.options.map((o) => o.long!)
  const docs = (await import('node:fs')).readFileSync(new URL('docs/deploy.md', `file://${root}`), 'utf8')
  for (const option of options) t.match(docs, option, `docs mention ${option}`)
  const section = docs.slice(docs.indexOf('### Outside the cluster'), docs.indexOf('\n## ', docs.indexOf('### Outside the cluster')))
  const mentioned = new Set(section.match(/--[a-z][a-z-]+/g) ?? [])
  t.ok(mentioned.size >= options.length, 'the register section lists the options')
  for (const option of mentioned) t.ok(options.includes(option), `${option} is a register option`)
})
