// The image as a kubelet runs it: built from the unmodified Dockerfile by
// test/image/run.sh (npm run image:test), run here by podman with runc as the
// image's own non-root user, on a read-only root filesystem with no tmpfs
// added, every capability dropped, host loopback networking. It serves a real
// AdmissionReview over TLS, and SIGTERM stops it in every state: serving,
// waiting for certificate files, and waiting on the API server for auto-TLS.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { generateCA, generateServingCert } from '../../src/tls/ca.ts'
import { freePort, httpsGet, waitFor } from '../e2e/harness.ts'

const IMAGE = process.env.VAULT_INJECTOR_IMAGE ?? 'localhost/vault-injector:test'
const ROOT = new URL('../../', import.meta.url).pathname
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
// What "within a few seconds" means here: well inside the kubelet's default
// 30 s grace period, far from the 25 s drain limit, so a process that ignores
// the signal is caught.
const STOP_LIMIT_MS = 10_000
const HOUR_MS = 3_600_000
// Node runs as PID 1 in the container, where a signal without a handler does
// nothing: serve installs its handlers before it waits for the first
// certificate (issue 14), which the two tests before the first certificate check.

function podman(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('podman', args, { encoding: 'utf8' })
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

interface Container {
  name: string
  proc: ChildProcess
  output: () => string
  exited: Promise<number | null>
}

let count = 0
// Runs the image the way manifests/base/deployment.yaml's securityContext asks.
function runImage(args: string[], env: Record<string, string>, mounts: string[] = []): Container {
  const name = `vault-injector-image-test-${process.pid}-${++count}`
  const flags = ['run', '--rm', '--name', name, '--network', 'host', '--read-only', '--read-only-tmpfs=false', '--cap-drop', 'all', '--security-opt', 'no-new-privileges']
  for (const [key, value] of Object.entries(env)) flags.push('--env', `${key}=${value}`)
  for (const mount of mounts) flags.push('--volume', mount)
  const proc = spawn('podman', [...flags, IMAGE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  proc.stdout!.on('data', (c: Buffer) => (text += c.toString()))
  proc.stderr!.on('data', (c: Buffer) => (text += c.toString()))
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)))
  return { name, proc, output: () => text, exited }
}

// SIGTERM through the runtime, as the kubelet sends it; resolves to the exit
// code, or 'running' if the container outlives the limit (then it is killed).
async function sigterm(c: Container): Promise<number | null | 'running'> {
  podman(['kill', '--signal', 'TERM', c.name])
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<'running'>((resolve) => (timer = setTimeout(() => resolve('running'), STOP_LIMIT_MS)))
  const outcome = await Promise.race([c.exited, limit])
  clearTimeout(timer)
  if (outcome === 'running') {
    podman(['kill', '--signal', 'KILL', c.name])
    await c.exited
  }
  return outcome
}

function post(url: string, ca: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.on('data', (c) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

function servingCerts(dir: string): string {
  const ca = generateCA({ commonName: 'image test CA', validityMs: HOUR_MS })
  const cert = generateServingCert({ ca, hosts: ['localhost', '127.0.0.1'], validityMs: HOUR_MS })
  writeFileSync(join(dir, 'tls.key'), cert.keyPem, { mode: 0o644 })
  writeFileSync(join(dir, 'tls.crt'), cert.certPem, { mode: 0o644 })
  return ca.certPem
}

function tempDir(t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  // Readable by the container's uid 10001, as a Secret volume's files are.
  chmodSync(dir, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('the image: numeric non-root user, OCI labels, Node 24, no npm', async (t) => {
  const inspect = podman(['image', 'inspect', IMAGE])
  t.equal(inspect.status, 0, inspect.stderr)
  const [image] = JSON.parse(inspect.stdout) as [{ Config: { User: string; Labels: Record<string, string>; Entrypoint: string[] } }]
  t.equal(image.Config.User, '10001:10001')
  const labels = image.Config.Labels
  t.equal(labels['org.opencontainers.image.version'], pkg.version, 'version label is package.json\'s')
  t.equal(labels['org.opencontainers.image.title'], 'vault-injector')
  t.equal(labels['org.opencontainers.image.licenses'], 'MPL-2.0')
  t.match(labels['org.opencontainers.image.revision'], /^[0-9a-f]{40}$|^unknown$/)
  const probe = spawnSync('podman', ['run', '--rm', '--network', 'none', '--read-only', '--entrypoint', 'node', IMAGE, '-e', `
    const { existsSync } = require('node:fs')
    const onPath = (process.env.PATH ?? '').split(':').flatMap((d) => ['npm', 'npx', 'yarn', 'corepack'].filter((b) => existsSync(d + '/' + b)))
    console.log(JSON.stringify({ major: Number(process.versions.node.split('.')[0]), uid: process.getuid(), onPath, npmModule: existsSync('/usr/local/lib/node_modules') }))
  `], { encoding: 'utf8' })
  t.equal(probe.status, 0, probe.stderr)
  t.same(JSON.parse(probe.stdout), { major: 24, uid: 10001, onPath: [], npmModule: false }, 'Node 24 as uid 10001, no npm/npx/yarn/corepack')
})

t.test('vault-injector version, in the image', async (t) => {
  const r = spawnSync('podman', ['run', '--rm', '--network', 'none', '--read-only', IMAGE, 'version'], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, new RegExp(`^vault-injector ${pkg.version.replaceAll('.', '\\.')}\\b`))
})

t.test('serves a review over TLS as uid 10001 on a read-only root; SIGTERM exits 0', async (t) => {
  const dir = tempDir(t, 'image-tls-')
  const ca = servingCerts(dir)
  const port = await freePort()
  const c = runImage(['serve'], { AGENT_INJECT_LISTEN: `127.0.0.1:${port}`, AGENT_INJECT_TLS_CERT_FILE: '/tls/tls.crt', AGENT_INJECT_TLS_KEY_FILE: '/tls/tls.key' }, [`${dir}:/tls:ro`])
  t.teardown(() => void podman(['kill', '--signal', 'KILL', c.name]))
  const base = `https://127.0.0.1:${port}`
  await waitFor('the server to be ready', async () => (await httpsGet(`${base}/health/ready`, ca)).status === 204, 60_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${c.output()}`)
  })
  const review = readFileSync(join(ROOT, 'examples/admission-review.json'), 'utf8')
  const answer = await post(`${base}/mutate`, ca, review)
  t.equal(answer.status, 200)
  const response = (JSON.parse(answer.body) as { response: { allowed: boolean; patchType?: string; patch?: string; uid: string } }).response
  t.equal(response.allowed, true)
  t.equal(response.patchType, 'JSONPatch')
  const patch = JSON.parse(Buffer.from(response.patch ?? '', 'base64').toString()) as { path: string; value?: { name?: string } }[]
  t.ok(patch.some((op) => op.value?.name === 'vault-agent'), 'the patch adds the vault-agent container')

  const metrics = (await httpsGet(`${base}/metrics`, ca)).body
  t.match(metrics, new RegExp(`^vault_injector_build_info\\{version="${pkg.version.replaceAll('.', '\\.')}",node_version="v24\\.[^"]+"\\} 1$`, 'm'), 'build info on /metrics')
  t.match(metrics, /^vault_injector_serving_certificate_expiry_timestamp_seconds \d+$/m, 'certificate expiry on /metrics')

  const inside = podman(['exec', c.name, 'node', '-e', "try { require('node:fs').writeFileSync('/app/probe', 'x'); console.log('written') } catch (e) { console.log(e.code, process.getuid()) }"])
  t.equal(inside.stdout.trim(), 'EROFS 10001', 'the root filesystem is read-only; the server runs as 10001')
  t.match(c.output(), new RegExp(`"version":"${pkg.version.replaceAll('.', '\\.')}"`), 'the startup line carries the version')
  t.equal(await sigterm(c), 0, `SIGTERM while serving: exit 0 within ${STOP_LIMIT_MS / 1000} s`)
})

t.test('SIGTERM while waiting for the certificate files: exits within seconds', async (t) => {
  const dir = tempDir(t, 'image-nocert-')
  // Files that exist (serve refuses missing ones at start, exit 2) but do not
  // load yet: serve waits for them.
  writeFileSync(join(dir, 'tls.crt'), 'not yet a certificate', { mode: 0o644 })
  writeFileSync(join(dir, 'tls.key'), 'not yet a key', { mode: 0o644 })
  const port = await freePort()
  const c = runImage(['serve'], { AGENT_INJECT_LISTEN: `127.0.0.1:${port}`, AGENT_INJECT_TLS_CERT_FILE: '/tls/tls.crt', AGENT_INJECT_TLS_KEY_FILE: '/tls/tls.key' }, [`${dir}:/tls:ro`])
  t.teardown(() => void podman(['kill', '--signal', 'KILL', c.name]))
  await waitFor('the server to say it waits for its certificate', async () => c.output().includes('serving certificate not loadable yet'), 60_000)
  const outcome = await sigterm(c)
  t.not(outcome, 'running', `SIGTERM before the first certificate: exits within ${STOP_LIMIT_MS / 1000} s`)
  t.equal(outcome, 0, 'exit code 0: nothing was being served')
})

t.test('SIGTERM while auto-TLS waits on an unreachable API server: exits within seconds', async (t) => {
  const dir = tempDir(t, 'image-autotls-')
  const closedPort = await freePort()
  // A kubeconfig pointing at a port where nothing listens: auto-TLS keeps
  // retrying its Secret and Lease and never gets a certificate.
  writeFileSync(join(dir, 'kubeconfig'), JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
    clusters: [{ name: 'c', cluster: { server: `https://127.0.0.1:${closedPort}`, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user: { token: 'not-a-real-token' } }],
    contexts: [{ name: 'c', context: { cluster: 'c', user: 'u', namespace: 'vault-injector' } }],
  }), { mode: 0o644 })
  const port = await freePort()
  const c = runImage(['serve'], { AGENT_INJECT_LISTEN: `127.0.0.1:${port}`, AGENT_INJECT_TLS_AUTO: 'vault-injector', NAMESPACE: 'vault-injector', POD_NAME: 'image-test', KUBECONFIG: '/kube/kubeconfig' }, [`${dir}:/kube:ro`])
  t.teardown(() => void podman(['kill', '--signal', 'KILL', c.name]))
  await waitFor('auto-TLS to try the API server', async () => c.output().includes('auto-tls: '), 60_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${c.output()}`)
  })
  const outcome = await sigterm(c)
  t.not(outcome, 'running', `SIGTERM before the first certificate (auto-TLS): exits within ${STOP_LIMIT_MS / 1000} s\n${c.output()}`)
})
