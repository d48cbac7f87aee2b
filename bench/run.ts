// npm run bench: vault-injector beside vault-k8s (HashiCorp's own mutation
// handler, test/e2e/go/vault-k8s, built from the Go module proxy and cached)
// and a floor (a minimal fastify HTTPS server answering allowed: true), in one
// run: same certificates, same AdmissionReviews, the servers pinned to one
// core and the load generator (autocannon, in this process) to the other,
// keep-alive connections. Each scenario runs ours and vault-k8s in turn,
// several rounds. Prints figures and the targets beside them; asserts nothing.
//
// BENCH_SECONDS (default 6) is the length of each measured run,
// BENCH_ROUNDS (default 3) the runs per server and scenario, BENCH_CONNECTIONS
// (default 16) the connections, BENCH_STARTS (default 7) the cold starts
// timed per server. BENCH_PEER=0 leaves vault-k8s out.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import https from 'node:https'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { build } from '../scripts/build.ts'
import { startArgs } from './start-command.ts'
import { generateCA, generateServingCert } from '../src/tls/ca.ts'
import { admissionReview, scenarios } from './scenarios.ts'

const root = new URL('../', import.meta.url).pathname
const seconds = Number(process.env.BENCH_SECONDS ?? 6)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 16)
const starts = Number(process.env.BENCH_STARTS ?? 7)
const withPeer = process.env.BENCH_PEER !== '0'
const VAULT_ADDRESS = 'https://vault.vault.svc:8200'
const WARMUP_SECONDS = 2
const RSS_SAMPLE_MS = 20

// The targets (issue 17 and issue 14): printed beside the figures.
const TARGET_THROUGHPUT_RATIO = 2
const TARGET_IDLE_MIB = 60
const TARGET_PEAK_MIB = 128
const TARGET_READY_MS = 150

interface ServerKind {
  name: string
  // The program and its arguments; the bench adds the pinning.
  command: string[]
  env: Record<string, string>
  port: number
}

interface Running {
  kind: ServerKind
  child: ChildProcess
  pid: number
  url: string
  readyMs: number
  // CPU the server spent until ready: less moved by a busy machine than the wall clock.
  readyCpuMs: number
}

// ---- the machine: pinning, /proc ----

const coreCount = availableParallelism()
const canPin = coreCount >= 2 && spawnSync('taskset', ['-V']).status === 0
const SERVER_CORE = '0'
const LOAD_CORE = '1'

function pinSelf(): void {
  // -a: every thread of this process (autocannon, TLS, the GC helpers).
  if (canPin) spawnSync('taskset', ['-a', '-cp', LOAD_CORE, String(process.pid)], { stdio: 'ignore' })
}

function procStatusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
}
const rssMiB = (pid: number): number => procStatusKiB(pid, 'VmRSS') / 1024

// User + system CPU of the whole process (all threads), in milliseconds.
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks * 1000) / 100
}

// ---- starting and stopping servers ----

function readyStatus(url: string, ca: string): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(`${url}/health/ready`, { ca, agent: false }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', () => resolve(0))
  })
}

async function start(kind: ServerKind, ca: string): Promise<Running> {
  const started = performance.now()
  const [program, ...args] = kind.command
  const pinned = canPin ? ['taskset', '-c', SERVER_CORE, program!, ...args] : [program!, ...args]
  // taskset execs the program: the child's pid is the server's.
  const child = spawn(pinned[0]!, pinned.slice(1), { cwd: root, env: { ...process.env, ...kind.env }, stdio: ['ignore', 'ignore', 'ignore'] })
  const url = `https://127.0.0.1:${kind.port}`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${kind.name} exited with ${child.exitCode}`)
    if ((await readyStatus(url, ca)) === 204) break
    if (Date.now() > deadline) throw new Error(`${kind.name} not ready within 20 s`)
    await new Promise((r) => setTimeout(r, 2))
  }
  const readyMs = performance.now() - started
  return { kind, child, pid: child.pid!, url, readyMs, readyCpuMs: cpuMs(child.pid!) }
}

async function stop(server: Running): Promise<void> {
  if (server.child.exitCode !== null) return
  const exited = new Promise((resolve) => server.child.once('exit', resolve))
  server.child.kill('SIGKILL')
  await exited
}

// ---- load ----

interface RunFigures {
  reviewsPerSecond: number
  p50Ms: number
  p99Ms: number
  cpuUsPerReview: number
  peakMiB: number
  errors: number
}

async function load(server: Running, body: string, durationS: number): Promise<RunFigures> {
  const cpuBefore = cpuMs(server.pid)
  let peak = rssMiB(server.pid)
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMiB(server.pid))
  }, RSS_SAMPLE_MS)
  const result = await autocannon({
    url: `${server.url}/mutate?timeout=10s`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: durationS,
  })
  clearInterval(sampler)
  peak = Math.max(peak, rssMiB(server.pid))
  const cpu = cpuMs(server.pid) - cpuBefore
  return {
    reviewsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    cpuUsPerReview: result.requests.total > 0 ? (cpu * 1000) / result.requests.total : 0,
    peakMiB: peak,
    errors: result.errors + result.timeouts + result.non2xx,
  }
}

// ---- the peer ----

// Builds (or finds cached) vault-k8s's handler; undefined with the reason printed.
function peerBinary(): string | undefined {
  process.stdout.write('vault-k8s: building or finding the cached build (bash test/e2e/build.sh vault-k8s) ...\n')
  const built = spawnSync('nice', ['-n', '10', 'bash', join(root, 'test/e2e/build.sh'), 'vault-k8s'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const binDir = built.stdout.trim().split('\n').at(-1)
  if (built.status !== 0 || !binDir) {
    process.stdout.write(`vault-k8s: not built (exit ${built.status}); the bench goes on without it\n`)
    return undefined
  }
  return join(binDir, 'vault-k8s')
}

// ---- printing ----

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const ratio = (a: number, b: number): string => (b > 0 ? `${fmt(a / b, 2)}×` : '')

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd() + '\n'
  return line(header) + line(widths.map((w) => '-'.repeat(w))) + rows.map(line).join('')
}

// ---- main ----

async function main(): Promise<void> {
  pinSelf()
  // Ours runs as `npm start` and the image run it: the bundle, the same Node flags.
  build()
  const peer = withPeer ? peerBinary() : undefined

  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-bench-'))
  const ca = generateCA({ commonName: 'bench CA', validityMs: 3_600_000 })
  const leaf = generateServingCert({ ca, hosts: ['127.0.0.1', 'localhost'], validityMs: 3_600_000 })
  const certFile = join(dir, 'tls.crt')
  const keyFile = join(dir, 'tls.key')
  writeFileSync(certFile, leaf.certPem)
  writeFileSync(keyFile, leaf.keyPem)

  const node = join(root, 'node_modules/.bin/node')
  const ours: ServerKind = {
    name: 'vault-injector',
    command: [node, ...startArgs()],
    env: { AGENT_INJECT_LISTEN: '127.0.0.1:18444', AGENT_INJECT_TLS_CERT_FILE: certFile, AGENT_INJECT_TLS_KEY_FILE: keyFile, AGENT_INJECT_VAULT_ADDR: VAULT_ADDRESS },
    port: 18444,
  }
  // vault-k8s's defaults (log level info: a line per request, as ours logs one per review).
  const theirs: ServerKind | undefined = peer
    ? { name: 'vault-k8s', command: [peer, 'serve', '-listen', '127.0.0.1:18445', '-tls-cert-file', certFile, '-tls-key-file', keyFile, '-vault-address', VAULT_ADDRESS], env: {}, port: 18445 }
    : undefined
  const floor: ServerKind = { name: 'floor', command: [node, join(root, 'bench/floor.ts')], env: { CERT_FILE: certFile, KEY_FILE: keyFile, PORT: '18443' }, port: 18443 }
  const kinds = theirs ? [ours, theirs] : [ours]

  process.stdout.write(
    `machine: ${cpus()[0]?.model ?? 'unknown'} × ${cpus().length} cores, ${fmt(totalmem() / 2 ** 30, 1)} GiB, Linux ${release()}, Node ${process.version}; load average ${loadavg().map((l) => fmt(l, 2)).join(' ')}\n` +
      `vault-injector: node ${startArgs().join(' ')}\n` +
      (theirs ? `vault-k8s: ${peer} serve (agent_inject.Handler v1.6.2)\n` : '') +
      `pinning: ${canPin ? `servers on core ${SERVER_CORE}, load generator on core ${LOAD_CORE}` : 'none (needs 2 cores and taskset)'}; autocannon, ${connections} keep-alive connections, ${rounds} × ${seconds} s per server and scenario after a ${WARMUP_SECONDS} s warm-up\n\n`,
  )

  // Start to ready, cold, in turn; then the idle memory of a fresh server.
  const readyMs = new Map<string, number[]>(kinds.map((k) => [k.name, []]))
  const readyCpuMs = new Map<string, number[]>(kinds.map((k) => [k.name, []]))
  for (let i = 0; i < starts; i++) {
    for (const kind of i % 2 ? [...kinds].reverse() : kinds) {
      const server = await start(kind, ca.certPem)
      readyMs.get(kind.name)!.push(server.readyMs)
      readyCpuMs.get(kind.name)!.push(server.readyCpuMs)
      await stop(server)
    }
  }
  const running = new Map<string, Running>()
  for (const kind of [...kinds, floor]) running.set(kind.name, await start(kind, ca.certPem))
  await new Promise((r) => setTimeout(r, 1000))
  const idleMiB = new Map([...running].map(([name, s]) => [name, rssMiB(s.pid)]))

  // The scenarios: ours and vault-k8s in turn, the floor once.
  const figures = new Map<string, Map<string, RunFigures[]>>()
  for (const scenario of scenarios()) {
    const body = JSON.stringify(admissionReview(scenario.pod))
    const byServer = new Map<string, RunFigures[]>()
    figures.set(scenario.name, byServer)
    for (const kind of kinds) await load(running.get(kind.name)!, body, WARMUP_SECONDS)
    for (let round = 0; round < rounds; round++) {
      for (const kind of round % 2 ? [...kinds].reverse() : kinds) {
        const f = await load(running.get(kind.name)!, body, seconds)
        byServer.set(kind.name, [...(byServer.get(kind.name) ?? []), f])
      }
    }
    await load(running.get('floor')!, body, WARMUP_SECONDS)
    byServer.set('floor', [await load(running.get('floor')!, body, seconds)])
    process.stdout.write(`  ${scenario.name}: done\n`)
  }
  const hwmMiB = new Map([...running].map(([name, s]) => [name, procStatusKiB(s.pid, 'VmHWM') / 1024]))
  for (const server of running.values()) await stop(server)
  rmSync(dir, { recursive: true, force: true })

  // The table: medians over the rounds.
  const names = [...kinds.map((k) => k.name), 'floor']
  const header = ['scenario', ...names, ...(theirs ? ['ours / vault-k8s'] : [])]
  const rows: string[][] = []
  const summary = new Map<string, { ours: RunFigures; theirs?: RunFigures }>()
  for (const [scenario, byServer] of figures) {
    const med = (name: string): RunFigures | undefined => {
      const runs = byServer.get(name)
      if (!runs) return undefined
      return {
        reviewsPerSecond: median(runs.map((r) => r.reviewsPerSecond)),
        p50Ms: median(runs.map((r) => r.p50Ms)),
        p99Ms: median(runs.map((r) => r.p99Ms)),
        cpuUsPerReview: median(runs.map((r) => r.cpuUsPerReview)),
        peakMiB: Math.max(...runs.map((r) => r.peakMiB)),
        errors: runs.reduce((a, r) => a + r.errors, 0),
      }
    }
    const m = new Map(names.map((n) => [n, med(n)]))
    const o = m.get('vault-injector')!
    const p = m.get('vault-k8s')
    summary.set(scenario, { ours: o, ...(p ? { theirs: p } : {}) })
    const cell = (name: string, pick: (f: RunFigures) => string): string => {
      const f = m.get(name)
      return f ? pick(f) : ''
    }
    const peaks = (name: string): string => (byServer.get(name) ?? []).map((r) => fmt(r.peakMiB, 0)).join(' / ')
    rows.push([scenario, ...names.map(() => ''), ...(p ? [''] : [])])
    rows.push(['  reviews/s', ...names.map((n) => cell(n, (f) => fmt(f.reviewsPerSecond))), ...(p ? [ratio(o.reviewsPerSecond, p.reviewsPerSecond)] : [])])
    rows.push(['  p50 / p99 ms', ...names.map((n) => cell(n, (f) => `${fmt(f.p50Ms)} / ${fmt(f.p99Ms)}`)), ...(p ? [ratio(o.p99Ms, p.p99Ms) + ' (p99)'] : [])])
    rows.push(['  CPU µs per review', ...names.map((n) => cell(n, (f) => fmt(f.cpuUsPerReview))), ...(p ? [ratio(o.cpuUsPerReview, p.cpuUsPerReview)] : [])])
    rows.push(['  peak RSS MiB, each run', ...names.map((n) => peaks(n)), ...(p ? [ratio(o.peakMiB, p.peakMiB)] : [])])
    rows.push(['  errors', ...names.map((n) => cell(n, (f) => String(f.errors))), ...(p ? [''] : [])])
  }
  const readyMedian = (name: string): number => median(readyMs.get(name) ?? [NaN])
  rows.push(['idle RSS MiB (fresh server)', ...names.map((n) => fmt(idleMiB.get(n) ?? 0, 1)), ...(theirs ? [ratio(idleMiB.get('vault-injector')!, idleMiB.get('vault-k8s')!)] : [])])
  rows.push(['peak RSS MiB (whole run, VmHWM)', ...names.map((n) => fmt(hwmMiB.get(n) ?? 0, 1)), ...(theirs ? [ratio(hwmMiB.get('vault-injector')!, hwmMiB.get('vault-k8s')!)] : [])])
  rows.push([`start to ready ms (median of ${starts})`, ...names.map((n) => (readyMs.has(n) ? fmt(readyMedian(n)) : '')), ...(theirs ? [ratio(readyMedian('vault-injector'), readyMedian('vault-k8s'))] : [])])
  const cpuMedian = (name: string): number => median(readyCpuMs.get(name) ?? [NaN])
  rows.push([`CPU ms until ready (median)`, ...names.map((n) => (readyCpuMs.has(n) ? fmt(cpuMedian(n)) : '')), ...(theirs ? [ratio(cpuMedian('vault-injector'), cpuMedian('vault-k8s'))] : [])])
  process.stdout.write('\n' + table(header, rows) + '\n')
  process.stdout.write(`start to ready, each start (ms): ${kinds.map((k) => `${k.name} ${readyMs.get(k.name)!.map((v) => fmt(v)).join(' ')}`).join('; ')}\n\n`)

  // The targets, met or missed.
  const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED')
  const lines: string[] = []
  const typical = [...summary.values()][0]!
  const large = [...summary.values()][2]!
  if (theirs) {
    for (const [label, s] of [['typical', typical], ['large', large]] as const) {
      const r = s.ours.reviewsPerSecond / s.theirs!.reviewsPerSecond
      lines.push(`throughput ≥ ${TARGET_THROUGHPUT_RATIO}× vault-k8s, ${label} pod: ${fmt(r, 2)}× ${verdict(r >= TARGET_THROUGHPUT_RATIO)}`)
      lines.push(`p99 ≤ vault-k8s's, ${label} pod: ${fmt(s.ours.p99Ms)} vs ${fmt(s.theirs!.p99Ms)} ms ${verdict(s.ours.p99Ms <= s.theirs!.p99Ms)}`)
    }
  }
  const idle = idleMiB.get('vault-injector')!
  const peakAll = Math.max(...[...summary.values()].map((s) => s.ours.peakMiB), hwmMiB.get('vault-injector')!)
  lines.push(`idle RSS ≤ ${TARGET_IDLE_MIB} MiB: ${fmt(idle, 1)} ${verdict(idle <= TARGET_IDLE_MIB)}`)
  lines.push(`peak RSS ≤ ${TARGET_PEAK_MIB} MiB in every scenario: ${fmt(peakAll, 1)} ${verdict(peakAll <= TARGET_PEAK_MIB)}`)
  lines.push(`start to ready ≤ ${TARGET_READY_MS} ms: ${fmt(readyMedian('vault-injector'))} ${verdict(readyMedian('vault-injector') <= TARGET_READY_MS)}`)
  process.stdout.write(`targets:\n${lines.map((l) => `  ${l}\n`).join('')}load average at the end: ${loadavg().map((l) => fmt(l, 2)).join(' ')}\n`)
}

await main()
