// `vault-injector serve` as a user runs it: a real process, its stdout/stderr,
// its exit codes and its answer to SIGTERM.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import https from 'node:https'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateCA, generateServingCert } from '../../src/tls/ca.ts'
import { httpsRequest } from '../helpers/server.ts'

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url))
const example = readFileSync(new URL('../../examples/admission-review.json', import.meta.url), 'utf8')

// The environment without any AGENT_INJECT_* the test runner may carry.
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('AGENT_INJECT_')) env[key] = value
  return { ...env, ...extra }
}

interface Running {
  child: ChildProcess
  url: string
  logs: Record<string, any>[]
  stderr: () => string
  exited: Promise<number | null>
}

function serve(args: string[], env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  const logs: Record<string, any>[] = []
  let stderr = ''
  let buffered = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8')
      const lines = buffered.split('\n')
      buffered = lines.pop()!
      for (const line of lines) {
        if (!line.trim()) continue
        const entry = JSON.parse(line) as Record<string, any>
        logs.push(entry)
        if (typeof entry.address === 'string') resolve({ child, url: entry.address, logs, stderr: () => stderr, exited })
      }
    })
    void exited.then((code) => reject(new Error(`serve exited with ${code}: ${stderr}`)))
  })
}

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { env: cleanEnv(env), stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })))
}

t.test('with nothing configured: a local CA, a clear note, answers, and a clean SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-serve-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const s = await serve(['--certs-dir', dir, '--listen', '127.0.0.1:0'])
  t.teardown(() => s.child.kill('SIGKILL'))
  const caFile = join(dir, 'ca.crt')
  // stderr and stdout are separate pipes: the note may arrive after the address.
  for (let i = 0; i < 100 && !s.stderr().includes('try: curl'); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(s.stderr(), `CA certificate: ${caFile} (new)`)
  t.match(s.stderr(), /try: curl --cacert \S+ca\.crt -H 'Content-Type: application\/json' --data @examples\/admission-review\.json /)
  t.ok(s.stderr().includes(` ${s.url}/mutate\n`), 'the curl line has the address actually listened on')
  t.ok(s.logs.some((l) => l.msg === `generated a local CA and serving certificate: the CA is ${caFile}`))
  t.ok(s.logs.some((l) => l.vaultAddress && /\(the default; set AGENT_INJECT_VAULT_ADDR\)/.test(l.msg)), 'says the Vault address is the default')
  t.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/)

  const ca = readFileSync(caFile, 'utf8')
  t.equal((await httpsRequest(`${s.url}/health/ready`, ca)).status, 204)
  const answer = await httpsRequest(`${s.url}/mutate`, ca, { body: example })
  t.equal(answer.status, 200)
  t.match(answer.json().response, { allowed: true, patchType: 'JSONPatch' })
  // The audit line travels through a pipe; it may land after the answer.
  const audited = (): boolean => s.logs.some((l) => l.msg === 'admission' && l.decision === 'inject')
  for (let i = 0; i < 100 && !audited(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(audited(), 'the audit line')

  s.child.kill('SIGTERM')
  t.equal(await s.exited, 0, 'SIGTERM: exit 0')
  t.ok(s.logs.some((l) => l.msg.startsWith('shutting down: readiness fails now') && l.signal === 'SIGTERM'))
})

t.test('certificate files and a Vault address from the environment', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-serve-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ca = generateCA({ commonName: 'serve test CA', validityMs: 3_600_000 })
  const leaf = generateServingCert({ ca, hosts: ['127.0.0.1'], validityMs: 3_600_000 })
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem)
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem)
  const s = await serve(['--listen', '127.0.0.1:1'], {
    AGENT_INJECT_TLS_CERT_FILE: join(dir, 'tls.crt'),
    AGENT_INJECT_TLS_KEY_FILE: join(dir, 'tls.key'),
    AGENT_INJECT_VAULT_ADDR: 'https://vault.example.com:8200',
    AGENT_INJECT_LISTEN: '127.0.0.1:0',
  })
  t.teardown(() => s.child.kill('SIGKILL'))
  t.notMatch(s.url, /:1$/, 'the environment wins over the flag')
  t.equal(s.stderr(), '', 'no local-CA note')
  t.ok(s.logs.some((l) => l.msg === 'agents will use Vault at https://vault.example.com:8200'))
  const ready = await httpsRequest(`${s.url}/health/ready`, ca.certPem)
  t.equal(ready.serial, new X509Certificate(leaf.certPem).serialNumber, 'serves the configured certificate')
  s.child.kill('SIGINT')
  t.equal(await s.exited, 0, 'SIGINT: exit 0')
})

t.test('bad settings: one message per bad setting, exit 2, before listening', async (t) => {
  const cases: [string[], Record<string, string>, RegExp[]][] = [
    [['--tls-min-version', 'tls11'], {}, [/--tls-min-version: "tls11" is not accepted \(tls12, tls13\)/]],
    [['--tls-cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,NOPE'], {}, [/--tls-cipher-suites: ".*NOPE" is not a comma list of cipher suites/]],
    [[], { AGENT_INJECT_TLS_CERT_FILE: '/nonexistent/tls.crt' }, [/AGENT_INJECT_TLS_CERT_FILE: "\/nonexistent\/tls.crt" is not an existing file/]],
    [['--max-body-bytes', '1024'], {}, [/--max-body-bytes: "1024" is not a byte count from 3 MiB/]],
    [['--listen', 'nonsense'], {}, [/--listen: "nonsense" is not host:port/]],
    // The confirmed bugs: each of these used to start.
    [[], { AGENT_INJECT_CPU_LIMIT: 'lots' }, [/AGENT_INJECT_CPU_LIMIT: "lots" is not a Kubernetes quantity/]],
    [['--cpu-limit', 'lots'], {}, [/--cpu-limit: "lots" is not a Kubernetes quantity/]],
    [['--memory-limit', '128MB'], {}, [/--memory-limit: "128MB" is not a Kubernetes quantity/]],
    [[], { AGENT_INJECT_RUN_AS_USER: '-5' }, [/AGENT_INJECT_RUN_AS_USER: "-5" is not a user or group ID/]],
    [[], { AGENT_INJECT_VAULT_ADDR: 'vault:8200' }, [/AGENT_INJECT_VAULT_ADDR: "vault:8200" is not an http or https URL/]],
    // Several at once: each is named.
    [['--log-level', 'loud'], { AGENT_INJECT_CPU_LIMIT: 'lots', AGENT_INJECT_RUN_AS_USER: '-5' }, [/--log-level: "loud"/, /AGENT_INJECT_CPU_LIMIT: "lots"/, /AGENT_INJECT_RUN_AS_USER: "-5"/]],
  ]
  const results = await Promise.all(cases.map(([args, env]) => run(args, env)))
  cases.forEach(([args, env, messages], i) => {
    const { code, stderr } = results[i]!
    const label = [...args, JSON.stringify(env)].join(' ')
    t.equal(code, 2, label)
    for (const message of messages) t.match(stderr, message, label)
    t.equal(stderr.trim().split('\n').length, messages.length, `one line per bad setting: ${label}`)
  })
})

// With auto-TLS and an API server that does not answer (yet), serve has no
// certificate to listen with: it must keep trying, not exit (Node ends a
// process whose only timers are unref'd, with an unsettled top-level await),
// and SIGTERM must still stop it.
t.test('auto-TLS with the API server unreachable: serve waits for its certificate, SIGTERM stops it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-serve-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'gone', cluster: { server: 'https://127.0.0.1:1' } }],
      users: [{ name: 'u', user: { token: 'x' } }],
      contexts: [{ name: 'c', context: { cluster: 'gone', user: 'u' } }],
      'current-context': 'c',
    }),
  )
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: cleanEnv({ AGENT_INJECT_TLS_AUTO: 'vault-injector', AGENT_INJECT_LISTEN: '127.0.0.1:0', KUBECONFIG: kubeconfig }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  // Two failed watches are at least one 5 s retry apart. Waited for by event,
  // not by a fixed sleep: starting Node takes seconds on a loaded machine.
  // The bound only keeps a hung run from waiting for ever.
  const retried = (): boolean => (output.match(/watch failed; retrying/g) ?? []).length >= 2
  await new Promise<void>((resolve) => {
    const bound = setTimeout(done, 90_000)
    function done(): void {
      clearTimeout(bound)
      child.stdout!.off('data', check)
      child.stderr!.off('data', check)
      resolve()
    }
    function check(): void {
      if (retried()) done()
    }
    child.stdout!.on('data', check)
    child.stderr!.on('data', check)
    child.once('exit', done)
    check()
  })
  t.ok(retried(), 'an API call failed, and was retried 5 s later')
  t.equal(child.exitCode, null, 'still running after 5 s of failed API calls')
  t.match(output, /auto-tls/, 'and saying why it has no certificate')
  t.notMatch(output, /unsettled top-level await/)
  child.kill('SIGTERM')
  const { code, signal } = await exited
  t.ok(code === 0 || signal === 'SIGTERM', `SIGTERM stops it (code ${code}, signal ${signal})`)
})

t.test('SIGHUP reloads the certificate files and the policy; it never stops the server', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-serve-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ca = generateCA({ commonName: 'serve test CA', validityMs: 3_600_000 })
  const write = (name: string): string => {
    const leaf = generateServingCert({ ca, hosts: ['127.0.0.1'], validityMs: 3_600_000 })
    writeFileSync(join(dir, 'tls.key'), leaf.keyPem)
    writeFileSync(join(dir, 'tls.crt'), leaf.certPem)
    return new X509Certificate(leaf.certPem).serialNumber + name.slice(0, 0)
  }
  const first = write('first')
  const policy = join(dir, 'policy.yaml')
  writeFileSync(policy, 'apiVersion: vault-injector.dev/v1alpha1\nkind: InjectorPolicy\nmetadata: {name: one}\nspec: {rules: []}\n')
  const s = await serve([], {
    AGENT_INJECT_TLS_CERT_FILE: join(dir, 'tls.crt'),
    AGENT_INJECT_TLS_KEY_FILE: join(dir, 'tls.key'),
    AGENT_INJECT_LISTEN: '127.0.0.1:0',
    AGENT_INJECT_POLICY_FILE: policy,
  })
  t.teardown(() => s.child.kill('SIGKILL'))
  t.equal((await httpsRequest(`${s.url}/health/ready`, ca.certPem)).serial, first)
  s.child.kill('SIGHUP')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(s.child.exitCode, null, 'still running after SIGHUP')
  t.ok(s.logs.some((l) => l.msg === 'reloading the certificate and the policy'))
  t.ok(s.logs.some((l) => l.msg === 'policy reloaded'), 'the policy was read again')
  const second = write('second')
  s.child.kill('SIGHUP')
  await new Promise((resolve) => setTimeout(resolve, 300))
  const fresh = new https.Agent({ keepAlive: false })
  t.equal((await httpsRequest(`${s.url}/health/ready`, ca.certPem, { agent: fresh })).serial, second, 'the new certificate is served')
  t.equal((await httpsRequest(`${s.url}/mutate`, ca.certPem, { body: example })).status, 200)
  s.child.kill('SIGTERM')
  t.equal(await s.exited, 0)
})

t.test('SIGTERM drains: readiness fails at once, reviews are still answered for the drain window, then exit 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-serve-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const s = await serve(['--certs-dir', dir, '--listen', '127.0.0.1:0'], { AGENT_INJECT_DRAIN_SECONDS: '2' })
  t.teardown(() => s.child.kill('SIGKILL'))
  const ca = readFileSync(join(dir, 'ca.crt'), 'utf8')
  s.child.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal((await httpsRequest(`${s.url}/health/ready`, ca)).status, 503, 'not ready')
  const during = await httpsRequest(`${s.url}/mutate`, ca, { body: example })
  t.equal(during.status, 200, 'a review during the drain is answered')
  t.equal(during.headers.connection, 'close', 'with Connection: close')
  t.equal(await s.exited, 0)
})

t.test('SIGTERM works while serve still waits for its first certificate', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-serve-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // Files that never become a certificate: serve waits for them.
  writeFileSync(join(dir, 'tls.crt'), 'not yet a certificate')
  writeFileSync(join(dir, 'tls.key'), 'not yet a key')
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: cleanEnv({ AGENT_INJECT_TLS_CERT_FILE: join(dir, 'tls.crt'), AGENT_INJECT_TLS_KEY_FILE: join(dir, 'tls.key'), AGENT_INJECT_LISTEN: '127.0.0.1:0' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  for (let i = 0; i < 100 && !output.includes('serving certificate not loadable yet'); i++) await new Promise((resolve) => setTimeout(resolve, 100))
  child.kill('SIGHUP')
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(child.exitCode, null, 'SIGHUP does not stop it')
  child.kill('SIGTERM')
  t.same(await exited, { code: 0, signal: null }, 'SIGTERM: a clean exit, by its own handler')
})
