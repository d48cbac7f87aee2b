// npm run load: load and faults, with figures printed (not a timed test).
// 50 concurrent clients send realistic AdmissionReviews for a minute; a third
// of the way in the serving certificate files are replaced; near the end the
// server gets SIGTERM. Every request must be answered correctly, or have its
// connection refused before it was accepted. Memory is sampled throughout.
//
// LOAD_SECONDS (default 60) and LOAD_CLIENTS (default 50) change the run.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from '../scripts/build.ts'
import { startArgs } from './start-command.ts'
import { generateCA, generateServingCert, type CertificateAuthority } from '../src/tls/ca.ts'
import { admissionReview, scenarios } from './scenarios.ts'

const root = new URL('../', import.meta.url).pathname
const seconds = Number(process.env.LOAD_SECONDS ?? 60)
const clients = Number(process.env.LOAD_CLIENTS ?? 50)
const port = 18700

type Outcome = 'ok' | 'refused' | 'failed'
const counts: Record<Outcome, number> = { ok: 0, refused: 0, failed: 0 }
const failures: string[] = []

function writeLeaf(ca: CertificateAuthority, dir: string): void {
  const leaf = generateServingCert({ ca, hosts: ['127.0.0.1'], validityMs: 3_600_000 })
  // Written to temporary names and renamed, as a Secret volume update is atomic.
  writeFileSync(join(dir, 'tls.key.new'), leaf.keyPem)
  writeFileSync(join(dir, 'tls.crt.new'), leaf.certPem)
  renameSync(join(dir, 'tls.key.new'), join(dir, 'tls.key'))
  renameSync(join(dir, 'tls.crt.new'), join(dir, 'tls.crt'))
}

function send(ca: string, body: string, uid: string): Promise<Outcome> {
  return new Promise((resolve) => {
    let accepted = false
    const req = https.request(`https://127.0.0.1:${port}/mutate`, { method: 'POST', ca, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = ''
      res.on('data', (c) => (text += c))
      res.on('end', () => {
        try {
          const answer = JSON.parse(text) as { response?: { uid?: string; allowed?: boolean; patch?: string } }
          const patch = JSON.parse(Buffer.from(answer.response?.patch ?? '', 'base64').toString() || '[]') as unknown[]
          if (res.statusCode === 200 && answer.response?.uid === uid && answer.response.allowed === true && patch.length > 0) return resolve('ok')
          failures.push(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`)
        } catch (error) {
          failures.push(`bad answer: ${(error as Error).message}`)
        }
        resolve('failed')
      })
    })
    req.on('socket', (socket) => socket.on('secureConnect', () => (accepted = true)))
    req.on('error', (error: NodeJS.ErrnoException) => {
      // Refused, or reset while the TCP/TLS handshake was still under way (the
      // listener closed with the connection in its backlog): never accepted.
      if (!accepted && (error.code === 'ECONNREFUSED' || error.code === 'ECONNRESET')) return resolve('refused')
      failures.push(`${error.code ?? ''} ${error.message}${accepted ? ' (after the connection was accepted)' : ''}`)
      resolve('failed')
    })
    req.end(body)
  })
}

function rssMiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
  } catch {
    return 0
  }
}

async function main(): Promise<void> {
  // The server runs as `npm start` and the image run it: from the stripped build.
  build()
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-load-'))
  const ca = generateCA({ commonName: 'load CA', validityMs: 3_600_000 })
  writeLeaf(ca, dir)
  const server = spawn(join(root, 'node_modules/.bin/node'), startArgs(), {
    cwd: root,
    env: { ...process.env, AGENT_INJECT_LISTEN: `127.0.0.1:${port}`, AGENT_INJECT_TLS_CERT_FILE: join(dir, 'tls.crt'), AGENT_INJECT_TLS_KEY_FILE: join(dir, 'tls.key'), AGENT_INJECT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)))
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline && (await send(ca.certPem, JSON.stringify(admissionReview(scenarios()[0]!.pod)), 'x').catch(() => 'failed')) === 'refused') await new Promise((r) => setTimeout(r, 50))
  counts.ok = counts.refused = counts.failed = 0
  failures.length = 0

  const pod = scenarios()[0]!.pod
  const started = Date.now()
  const endAt = started + seconds * 1000
  const memory: { atS: number; mib: number }[] = []
  const sampler = setInterval(() => memory.push({ atS: (Date.now() - started) / 1000, mib: rssMiB(server.pid!) }), 1000)
  setTimeout(() => writeLeaf(ca, dir), (seconds * 1000) / 3)
  setTimeout(() => writeLeaf(ca, dir), (seconds * 1000) / 2)
  const sigtermAt = seconds * 1000 * 0.9
  setTimeout(() => server.kill('SIGTERM'), sigtermAt)

  const client = async (): Promise<void> => {
    while (Date.now() < endAt) {
      const review = admissionReview(pod)
      const uid = randomUUID()
      ;(review.request as { uid: string }).uid = uid
      const outcome = await send(ca.certPem, JSON.stringify(review), uid)
      counts[outcome]++
      if (outcome === 'refused') await new Promise((r) => setTimeout(r, 20))
    }
  }
  await Promise.all(Array.from({ length: clients }, client))
  clearInterval(sampler)
  const code = await exited
  const beforeStop = memory.filter((m) => m.atS < (sigtermAt / 1000) - 1 && m.mib > 0)
  const third = Math.max(1, Math.floor(beforeStop.length / 3))
  const avg = (xs: { mib: number }[]): number => xs.reduce((a, b) => a + b.mib, 0) / Math.max(1, xs.length)

  process.stdout.write(`load: ${clients} clients for ${seconds} s, new TLS connection per review; certificate files replaced at ${(seconds / 3).toFixed(0)} s and ${(seconds / 2).toFixed(0)} s; SIGTERM at ${(sigtermAt / 1000).toFixed(0)} s\n`)
  process.stdout.write(`reviews answered correctly: ${counts.ok}\nconnections refused before being accepted (after SIGTERM): ${counts.refused}\nfailed admissions: ${counts.failed}\n`)
  process.stdout.write(`server exit code after SIGTERM: ${code}\n`)
  process.stdout.write(`resident memory (MiB): first third ${avg(beforeStop.slice(0, third)).toFixed(1)}, middle ${avg(beforeStop.slice(third, 2 * third)).toFixed(1)}, last third ${avg(beforeStop.slice(2 * third)).toFixed(1)}, max ${Math.max(...beforeStop.map((m) => m.mib)).toFixed(1)}\n`)
  for (const f of failures.slice(0, 10)) process.stdout.write(`  failure: ${f}\n`)
  rmSync(dir, { recursive: true, force: true })
  process.exitCode = counts.failed === 0 && code === 0 ? 0 : 1
}

await main()
