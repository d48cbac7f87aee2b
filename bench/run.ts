// npm run bench: the real server over HTTPS, side by side with the floor (a
// minimal fastify HTTPS server answering allowed: true), driven by autocannon
// with realistic AdmissionReviews. Prints figures; asserts nothing.
//
// BENCH_SECONDS (default 8) sets the length of each load run, BENCH_CONNECTIONS
// (default 16) the concurrent connections, BENCH_SOAK (default 100000) the
// number of reviews of the memory soak.
import { spawn, type ChildProcess } from 'node:child_process'
import https from 'node:https'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, totalmem, tmpdir, release } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { build } from '../scripts/build.ts'
import { startArgs } from './start-command.ts'
import { generateCA, generateServingCert } from '../src/tls/ca.ts'
import { benchEngine } from './engine.ts'
import { admissionReview, scenarios } from './scenarios.ts'

const root = new URL('../', import.meta.url).pathname
const seconds = Number(process.env.BENCH_SECONDS ?? 8)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 16)
const soakReviews = Number(process.env.BENCH_SOAK ?? 100_000)

interface Server {
  name: string
  url: string
  child: ChildProcess
  readyMs: number
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return kb / 1024
}

function readyStatus(url: string, ca: string): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(`${url}/health/ready`, { ca }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', () => resolve(0))
  })
}

async function waitReady(url: string, child: ChildProcess, ca: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`)
    if ((await readyStatus(url, ca)) === 204) return
    await new Promise((r) => setTimeout(r, 5))
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`)
}

async function start(name: string, args: string[], env: Record<string, string>, port: number, ca: string): Promise<Server> {
  const started = performance.now()
  const child = spawn(join(root, 'node_modules/.bin/node'), args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] })
  const url = `https://127.0.0.1:${port}`
  await waitReady(url, child, ca, 15_000)
  return { name, url, child, readyMs: performance.now() - started }
}

async function load(url: string, body: string, options: { duration?: number; amount?: number }): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}/mutate`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    ...options,
  })
}

const fmt = (n: number, digits = 0): string => n.toFixed(digits)

async function main(): Promise<void> {
  // The server runs as `npm start` and the image run it: from the stripped build.
  build()
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-bench-'))
  const ca = generateCA({ commonName: 'bench CA', validityMs: 3_600_000 })
  const leaf = generateServingCert({ ca, hosts: ['127.0.0.1', 'localhost'], validityMs: 3_600_000 })
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem)
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem)

  process.stdout.write(`machine: ${cpus()[0]?.model ?? 'unknown'} × ${cpus().length} cores, ${fmt(totalmem() / 2 ** 30, 1)} GiB, Linux ${release()}, Node ${process.version}\n`)
  process.stdout.write(`load: autocannon, ${connections} connections, ${seconds} s per run\n\n`)

  const floor = await start('floor', ['bench/floor.ts'], { CERT_FILE: join(dir, 'tls.crt'), KEY_FILE: join(dir, 'tls.key'), PORT: '18443' }, 18443, ca.certPem)
  const ourEnv = { AGENT_INJECT_LISTEN: '127.0.0.1:18444', AGENT_INJECT_TLS_CERT_FILE: join(dir, 'tls.crt'), AGENT_INJECT_TLS_KEY_FILE: join(dir, 'tls.key') }
  const ours = await start('vault-injector', startArgs(), ourEnv, 18444, ca.certPem)
  process.stdout.write(`start to ready: vault-injector ${fmt(ours.readyMs)} ms (floor ${fmt(floor.readyMs)} ms)\n\n`)
  // The floor's memory too: what Node, fastify and TLS hold before our code.
  const floorIdle = rssMiB(floor.child.pid!)

  const header = ['scenario', 'server', 'reviews/s', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'vs floor', 'engine µs/op (p50/p99)']
  const rows: string[][] = []
  let rssWarm = 0
  for (const scenario of scenarios()) {
    const body = JSON.stringify(admissionReview(scenario.pod))
    const engine = benchEngine(scenario)
    const f = await load(floor.url, body, { duration: seconds })
    const o = await load(ours.url, body, { duration: seconds })
    if (rssWarm === 0) rssWarm = rssMiB(ours.child.pid!)
    const errors = (r: autocannon.Result): string => String(r.errors + r.timeouts + r.non2xx)
    rows.push([scenario.name, 'floor', fmt(f.requests.average), fmt(f.latency.p50, 2), fmt(f.latency.p99, 2), fmt(f.latency.max, 1), errors(f), '', ''])
    rows.push(['', 'vault-injector', fmt(o.requests.average), fmt(o.latency.p50, 2), fmt(o.latency.p99, 2), fmt(o.latency.max, 1), errors(o), `${fmt((o.requests.average / f.requests.average) * 100)}%`, `${fmt(engine.p50Us)} / ${fmt(engine.p99Us)}`])
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ') + '\n'
  process.stdout.write(line(header) + line(widths.map((w) => '-'.repeat(w))) + rows.map(line).join('') + '\n')

  // Memory. V8 keeps the heap that the large-pod run made it grow to, so the
  // soak of typical reviews runs on a freshly started server, sampled along
  // the way; the figure after all the scenarios is printed beside it.
  const rssAfterScenarios = rssMiB(ours.child.pid!)
  const floorAfterScenarios = rssMiB(floor.child.pid!)
  ours.child.kill('SIGTERM')
  await new Promise((resolve) => ours.child.once('exit', resolve))
  const fresh = await start('vault-injector', startArgs(), ourEnv, 18444, ca.certPem)
  const rssIdle = rssMiB(fresh.child.pid!)
  const typical = JSON.stringify(admissionReview(scenarios()[0]!.pod))
  const samples: string[] = []
  const step = Math.max(1, Math.floor(soakReviews / 5))
  let sent = 0
  while (sent < soakReviews) {
    const amount = Math.min(step, soakReviews - sent)
    await load(fresh.url, typical, { amount })
    sent += amount
    samples.push(`${sent}: ${fmt(rssMiB(fresh.child.pid!), 1)}`)
  }
  process.stdout.write(`resident memory (MiB): after the first run ${fmt(rssWarm, 1)}; after every scenario ${fmt(rssAfterScenarios, 1)} (floor: idle ${fmt(floorIdle, 1)}, after every scenario ${fmt(floorAfterScenarios, 1)})\n`)
  process.stdout.write(`fresh server, idle ${fmt(rssIdle, 1)}; during ${soakReviews} typical reviews ${samples.join(', ')}\n`)

  for (const s of [floor, fresh]) s.child.kill('SIGTERM')
  rmSync(dir, { recursive: true, force: true })
}

await main()
