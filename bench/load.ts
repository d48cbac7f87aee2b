// npm run load: the fault run, with figures printed (not a timed test).
//
// 50 clients, each on its own keep-alive connection, send realistic
// AdmissionReviews back to back for LOAD_SECONDS (default 180) to a
// "Service" of injector replicas, while:
//   - the serving certificate files are replaced (at 1/4 and 1/2 of the run),
//   - the policy file changes every 10 s and the server gets SIGHUP every 15 s,
//   - at 60 % a replacement replica starts; once it is ready the first one is
//     taken out as Kubernetes does: its endpoint goes 1 s later (endpoints
//     lag), SIGTERM comes after the preStop pause (5 s); it must drain and
//     exit 0,
//   - at the end the replacement gets SIGTERM and must exit 0 as well.
// Clients behave as the API server's webhook client: a connection is bound to
// one replica (kube-proxy balances connections, not requests), a new one goes
// to a ready endpoint, and a refused or reset connection is retried with the
// same review. A review is lost when it never gets its answer; failed when
// the answer is wrong. Both must be 0.
//
// LOAD_SECONDS and LOAD_CLIENTS change the run.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from '../scripts/build.ts'
import { startArgs } from './start-command.ts'
import { generateCA, generateServingCert, type CertificateAuthority } from '../src/tls/ca.ts'
import { admissionReview, scenarios } from './scenarios.ts'

const root = new URL('../', import.meta.url).pathname
const seconds = Number(process.env.LOAD_SECONDS ?? 180)
const clients = Number(process.env.LOAD_CLIENTS ?? 50)
const PRESTOP_MS = 5_000
const ENDPOINT_LAG_MS = 1_000
const MAX_ATTEMPTS = 20

const counts = { ok: 0, retried: 0, failed: 0, lost: 0, connectionClose: 0 }
const failures: string[] = []

function atomicWrite(path: string, text: string): void {
  writeFileSync(`${path}.new`, text)
  renameSync(`${path}.new`, path)
}

function writeLeaf(ca: CertificateAuthority, dir: string): void {
  const leaf = generateServingCert({ ca, hosts: ['127.0.0.1'], validityMs: 3_600_000 })
  // As a Secret volume update: each file replaced atomically, key first.
  atomicWrite(join(dir, 'tls.key'), leaf.keyPem)
  atomicWrite(join(dir, 'tls.crt'), leaf.certPem)
}

function policyText(generation: number): string {
  return `apiVersion: vault-injector.dev/v1alpha1\nkind: InjectorPolicy\nmetadata: {name: load-${generation}}\nspec:\n  rules:\n    - name: limits\n      mode: warn\n      require: {resourceLimits: true}\n`
}

interface Replica {
  name: string
  port: number
  child: ChildProcess
  ready: boolean
  // Still a Service endpoint (a terminating pod is removed, with a lag).
  endpoint: boolean
  exited: Promise<number | null>
  peakRssMiB: number
}

function rssMiB(pid: number | undefined): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
  } catch {
    return 0
  }
}

function startReplica(name: string, port: number, dir: string): Replica {
  const child = spawn(join(root, 'node_modules/.bin/node'), startArgs(), {
    cwd: root,
    env: {
      ...process.env,
      AGENT_INJECT_LISTEN: `127.0.0.1:${port}`,
      AGENT_INJECT_TLS_CERT_FILE: join(dir, 'tls.crt'),
      AGENT_INJECT_TLS_KEY_FILE: join(dir, 'tls.key'),
      AGENT_INJECT_POLICY_FILE: join(dir, 'policy.yaml'),
      AGENT_INJECT_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { name, port, child, ready: false, endpoint: true, exited, peakRssMiB: 0 }
}

// The kubelet's readiness probe.
function probe(replica: Replica, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.request(`https://127.0.0.1:${replica.port}/health/ready`, { ca, agent: false, timeout: 1_000 }, (res) => {
      res.resume()
      resolve(res.statusCode === 204)
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

type Attempt = { kind: 'answer'; status: number; text: string; close: boolean } | { kind: 'retry'; why: string } | { kind: 'error'; why: string }

function post(port: number, agent: https.Agent, ca: string, body: string): Promise<Attempt> {
  return new Promise((resolve) => {
    let accepted = false
    const req = https.request(`https://127.0.0.1:${port}/mutate?timeout=10s`, { method: 'POST', ca, agent, timeout: 10_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => (text += c.toString('utf8')))
      res.on('end', () => resolve({ kind: 'answer', status: res.statusCode ?? 0, text, close: res.headers.connection === 'close' }))
      res.on('error', (error) => resolve({ kind: 'error', why: `response: ${error.message}` }))
    })
    req.on('socket', (socket) => {
      // A reused keep-alive socket was accepted long ago.
      if (!socket.connecting) accepted = true
      else socket.once('secureConnect', () => (accepted = true))
    })
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')))
    req.on('error', (error: NodeJS.ErrnoException) => {
      // What the API server's webhook client retries: refused and reset connections.
      if (error.code === 'ECONNREFUSED' || error.code === 'ECONNRESET' || error.code === 'EPIPE') return resolve({ kind: 'retry', why: `${error.code}${accepted ? ' after accept' : ''}` })
      resolve({ kind: 'error', why: `${error.code ?? ''} ${error.message}` })
    })
    req.end(body)
  })
}

async function main(): Promise<void> {
  // The server runs as `npm start` and the image run it: from the build.
  build()
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-load-'))
  const ca = generateCA({ commonName: 'load CA', validityMs: 3_600_000 })
  writeLeaf(ca, dir)
  let policyGeneration = 0
  atomicWrite(join(dir, 'policy.yaml'), policyText(policyGeneration))

  const replicas: Replica[] = [startReplica('first', 18701, dir)]
  const prober = setInterval(() => {
    for (const r of replicas) {
      void probe(r, ca.certPem).then((ok) => (r.ready = ok))
      r.peakRssMiB = Math.max(r.peakRssMiB, rssMiB(r.child.pid))
    }
  }, 200)
  while (!replicas[0]!.ready) await new Promise((r) => setTimeout(r, 100))

  const pod = scenarios()[0]!.pod
  const started = Date.now()
  const endAt = started + seconds * 1000
  const events: string[] = []
  const note = (what: string): void => void events.push(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`)
  const at = (fraction: number, action: () => void): NodeJS.Timeout => setTimeout(action, seconds * 1000 * fraction)

  at(0.25, () => (writeLeaf(ca, dir), note('certificate files replaced')))
  at(0.5, () => (writeLeaf(ca, dir), note('certificate files replaced')))
  const policyTimer = setInterval(() => atomicWrite(join(dir, 'policy.yaml'), policyText(++policyGeneration)), 10_000)
  const hupTimer = setInterval(() => {
    for (const r of replicas) if (r.child.exitCode === null && r.endpoint) r.child.kill('SIGHUP')
  }, 15_000)
  at(0.6, () => {
    const next = startReplica('replacement', 18702, dir)
    replicas.push(next)
    note('replacement replica started')
    const waitReady = setInterval(() => {
      if (!next.ready) return
      clearInterval(waitReady)
      const old = replicas[0]!
      note('replacement ready; first replica terminating (preStop)')
      setTimeout(() => ((old.endpoint = false), note('first replica removed from the endpoints')), ENDPOINT_LAG_MS)
      setTimeout(() => (old.child.kill('SIGTERM'), note('first replica gets SIGTERM')), PRESTOP_MS)
    }, 100)
  })

  // Connection-level balancing, as kube-proxy does: a ready endpoint per new connection.
  let turn = 0
  const pick = (): Replica | undefined => {
    const ready = replicas.filter((r) => r.endpoint && r.ready)
    return ready.length > 0 ? ready[turn++ % ready.length] : undefined
  }

  const client = async (): Promise<void> => {
    let agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
    let target = pick()
    const reconnect = (): void => {
      agent.destroy()
      agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
      target = pick()
    }
    while (Date.now() < endAt) {
      const review = admissionReview(pod)
      const uid = randomUUID()
      ;(review.request as { uid: string }).uid = uid
      const body = JSON.stringify(review)
      let done = false
      for (let attempt = 1; attempt <= MAX_ATTEMPTS && !done; attempt++) {
        if (!target) {
          await new Promise((r) => setTimeout(r, 50))
          reconnect()
          continue
        }
        const result = await post(target.port, agent, ca.certPem, body)
        if (result.kind === 'retry') {
          counts.retried++
          reconnect()
          await new Promise((r) => setTimeout(r, Math.min(1_000, 10 * 2 ** attempt)))
          continue
        }
        done = true
        if (result.kind === 'error') {
          counts.failed++
          failures.push(`${target.name}: ${result.why}`)
          reconnect()
          break
        }
        if (result.close) {
          counts.connectionClose++
          reconnect()
        }
        try {
          const answer = JSON.parse(result.text) as { response?: { uid?: string; allowed?: boolean; patch?: string } }
          const patch = JSON.parse(Buffer.from(answer.response?.patch ?? '', 'base64').toString() || '[]') as unknown[]
          if (result.status === 200 && answer.response?.uid === uid && answer.response.allowed === true && patch.length > 0) counts.ok++
          else {
            counts.failed++
            failures.push(`${target.name}: HTTP ${result.status}: ${result.text.slice(0, 160)}`)
          }
        } catch (error) {
          counts.failed++
          failures.push(`${target.name}: bad answer: ${(error as Error).message}`)
        }
      }
      if (!done) {
        counts.lost++
        failures.push(`lost after ${MAX_ATTEMPTS} attempts`)
      }
    }
    agent.destroy()
  }
  await Promise.all(Array.from({ length: clients }, client))
  clearInterval(policyTimer)
  clearInterval(hupTimer)
  for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM')
  note('run over; SIGTERM to the replicas still running')
  const codes = await Promise.all(replicas.map((r) => r.exited))
  clearInterval(prober)

  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`
  process.stdout.write(`load: ${new Date().toISOString().slice(0, 10)}, ${machine}; ${clients} keep-alive clients for ${seconds} s\n`)
  for (const e of events) process.stdout.write(`  ${e}\n`)
  process.stdout.write(`policy file rewritten ${policyGeneration} times; SIGHUP every 15 s\n`)
  process.stdout.write(`reviews answered correctly: ${counts.ok} (${(counts.ok / seconds).toFixed(0)}/s)\n`)
  process.stdout.write(`connections refused or reset, review retried: ${counts.retried}\n`)
  process.stdout.write(`answers with Connection: close (drain): ${counts.connectionClose}\n`)
  process.stdout.write(`failed admissions: ${counts.failed}\nlost admissions: ${counts.lost}\n`)
  process.stdout.write(`exit codes after SIGTERM: ${replicas.map((r, i) => `${r.name} ${codes[i]}`).join(', ')}\n`)
  process.stdout.write(`peak resident memory: ${replicas.map((r) => `${r.name} ${r.peakRssMiB.toFixed(0)} MiB`).join(', ')}\n`)
  for (const f of failures.slice(0, 10)) process.stdout.write(`  failure: ${f}\n`)
  rmSync(dir, { recursive: true, force: true })
  process.exitCode = counts.failed === 0 && counts.lost === 0 && codes.every((c) => c === 0) ? 0 : 1
}

await main()
