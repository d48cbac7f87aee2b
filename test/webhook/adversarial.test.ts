// The webhook probed as an attacker inside the cluster would: raw TLS
// sockets, pipelined requests, clients that trickle, forged namespaces,
// hostile JSON, weak TLS suites, bad certificate pairs, a drain under load.
// Each case ends by showing that a good review is still answered.
import t from 'tap'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { join } from 'node:path'
import tls from 'node:tls'
import { parsePolicy } from '../../src/policy/load.ts'
import { generateServingCert } from '../../src/tls/ca.ts'
import { PINS } from '../helpers/policies.ts'
import { annotatedPod } from '../helpers/pods.ts'
import { startServer, type TestServer } from '../helpers/server.ts'

type Obj = Record<string, any>
const example = readFileSync(new URL('../../examples/admission-review.json', import.meta.url), 'utf8')
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// Waits (up to 10 s, for busy machines) until the condition holds; no test depends on how fast.
async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await condition()); i++) await sleep(50)
}

function review(pod: Obj, namespace = 'team-a'): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: `uid-${Math.random().toString(16).slice(2)}`, kind: { group: '', version: 'v1', kind: 'Pod' }, namespace, operation: 'CREATE', object: pod },
  })
}

function rawRequest(body: string, extraHeaders = ''): string {
  return `POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`
}

function connect(s: TestServer, options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: s.port, ca: s.ca.certPem, ...options }, () => resolve(socket))
    socket.on('error', reject)
  })
}

async function metric(s: TestServer, name: string): Promise<string[]> {
  return (await s.request('/metrics')).text.split('\n').filter((line) => line.startsWith(name))
}

async function stillServes(s: TestServer): Promise<boolean> {
  const r = await s.request('/mutate', { body: example })
  return r.status === 200 && r.json().response.allowed === true
}

t.test('pipelined reviews on one keep-alive TLS connection never leak admission slots', async (t) => {
  const s = await startServer({ AGENT_INJECT_MAX_CONCURRENT_REQUESTS: '256' })
  t.teardown(() => s.server.close())
  const eight = rawRequest(example).repeat(8)
  // Three ways to leave: half-close after writing, destroy while answers are
  // queued, and never read the answers at all.
  for (const mode of ['end', 'destroy', 'no-read']) {
    for (let i = 0; i < 60; i++) {
      const socket = await connect(s)
      socket.on('error', () => {})
      socket.write(eight)
      if (mode === 'end') socket.end()
      else if (mode === 'no-read') socket.pause()
      await sleep(i % 5)
      if (mode !== 'end') socket.destroy()
    }
  }
  await until(() => s.server.gate.inFlight === 0)
  t.same(await metric(s, 'vault_agent_injector_request_queue_length'), ['vault_agent_injector_request_queue_length 0'], 'every slot is given back')
  t.equal(s.server.gate.inFlight, 0)
  t.equal(s.server.gate.bytesHeld, 0)
  t.equal((await s.request('/health/ready')).status, 204, 'ready, and honestly so')
  t.ok(await stillServes(s))
})

t.test('one connection holds at most 4 reviews; a review holds its slot at most slotMs', async (t) => {
  const s = await startServer({}, { timeouts: { slotMs: 400, checkIntervalMs: 50 } })
  t.teardown(() => s.server.close())
  const socket = await connect(s)
  socket.on('error', () => {})
  let text = ''
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
  socket.write(rawRequest(example).repeat(6))
  await until(() => (text.match(/HTTP\/1\.1 /g)?.length ?? 0) >= 6)
  t.equal(text.match(/HTTP\/1\.1 200/g)?.length ?? 0, 4, 'four pipelined reviews are answered')
  t.equal(text.match(/HTTP\/1\.1 503/g)?.length ?? 0, 2, 'the rest get 503 (the API server never pipelines)')

  // A client that never reads its answers cannot keep slots: with every slot
  // taken the server is not ready, and the sweep gives them back.
  const full = await startServer({ AGENT_INJECT_MAX_CONCURRENT_REQUESTS: '2' }, { timeouts: { slotMs: 400, checkIntervalMs: 50 } })
  t.teardown(() => full.server.close())
  const holders = await Promise.all([connect(full), connect(full)])
  for (const h of holders) {
    h.on('error', () => {})
    // Headers only: the body never comes, so the slot stays taken.
    h.write('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{')
  }
  await until(() => full.server.gate.inFlight === 2)
  t.equal(full.server.gate.inFlight, 2)
  t.equal((await full.request('/health/ready')).status, 503, 'every slot taken: not ready')
  await until(() => full.server.gate.inFlight === 0)
  t.equal(full.server.gate.inFlight, 0, 'the sweep took the slots back')
  t.equal((await full.request('/health/ready')).status, 204)
  t.ok(await stillServes(full))
})

t.test('300 clients trickling their bodies do not starve a good client', async (t) => {
  // Deadlines as long as before (30 s), so that only the eviction of slow
  // senders can make room here.
  const s = await startServer({}, { timeouts: { handshakeMs: 30_000, headersMs: 30_000, requestMs: 30_000, slotMs: 60_000 } })
  t.teardown(() => s.server.close())
  const tricklers: tls.TLSSocket[] = []
  for (let batch = 0; batch < 6; batch++) {
    const sockets = await Promise.all(Array.from({ length: 50 }, () => connect(s).catch(() => undefined)))
    for (const socket of sockets) {
      if (!socket) continue
      socket.on('error', () => {})
      socket.write(`POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"apiVersion":`)
      tricklers.push(socket)
    }
  }
  t.teardown(() => tricklers.forEach((socket) => socket.destroy()))
  const drip = setInterval(() => tricklers.forEach((socket) => socket.writable && socket.write(' ')), 200)
  t.teardown(() => clearInterval(drip))
  await until(() => s.server.gate.inFlight === 256)
  await sleep(1_200)
  t.equal(s.server.gate.inFlight, 256, 'the tricklers hold every slot')
  const statuses: number[] = []
  for (let i = 0; i < 20; i++) statuses.push((await s.request('/mutate', { body: example })).status)
  t.same([...new Set(statuses)], [200], `20 good reviews answered while ${tricklers.length} clients trickle`)
  t.ok(s.server.gate.evictions > 0, `slow senders were cut off to make room (${s.server.gate.evictions})`)
})

t.test('header and body deadlines sit well under the API server\'s 10 s timeout', async (t) => {
  const s = await startServer()
  t.teardown(() => s.server.close())
  const http = s.server.app.server
  t.ok(http.headersTimeout <= 3_000, `headers within ${http.headersTimeout} ms`)
  t.ok(http.requestTimeout <= 5_000, `headers and body within ${http.requestTimeout} ms`)
})

t.test('forged namespaces cannot add unbounded metric series', async (t) => {
  const s = await startServer()
  t.teardown(() => s.server.close())
  const agent = new https.Agent({ keepAlive: true, maxSockets: 4 })
  t.teardown(() => agent.destroy())
  const bad = annotatedPod({ 'vault.hashicorp.com/agent-limits-cpu': 'lots' })
  const sends: Promise<unknown>[] = []
  for (let i = 0; i < 1_100; i++) sends.push(s.request('/mutate', { body: review(bad, `forged-${i}`), agent }))
  for (const ns of ['../etc', 'A'.repeat(80), 'x'.repeat(64), '']) sends.push(s.request('/mutate', { body: review(bad, ns), agent }))
  await Promise.all(sends)
  const series = await metric(s, 'vault_agent_injector_failed_injections_by_namespace_total{')
  t.ok(series.length <= 1_002, `${series.length} series for 1,104 namespaces`)
  t.ok(series.some((line) => line.includes('namespace="_other"')), 'the rest are counted together')
  t.ok(series.some((line) => line.includes('namespace="_invalid"')), 'names that cannot be namespaces are counted as _invalid')
  t.ok(await stillServes(s))
})

t.test('deeply nested JSON: a 400 for the body, a denial with an audit line for an annotation', async (t) => {
  const s = await startServer({ AGENT_INJECT_LOG_LEVEL: 'info' })
  t.teardown(() => s.server.close())
  const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n)
  for (const n of [6_000, 200_000]) {
    const body = review({ metadata: { name: 'p', annotations: {} }, spec: { containers: [{ name: 'a', image: 'b', args: '@' }] } }).replace('"@"', deep(n))
    const r = await s.request('/mutate', { body })
    t.equal(r.status, 400, `a body nested ${n} deep: 400`)
  }
  for (const annotation of ['agent-json-patch', 'agent-init-json-patch']) {
    const pod = annotatedPod({ [`vault.hashicorp.com/${annotation}`]: `[{"op":"add","path":"/x","value":${deep(6_000)}}]` })
    const r = await s.request('/mutate', { body: review(pod) })
    t.equal(r.status, 200)
    t.match(r.json().response, { allowed: false, status: { code: 400, message: new RegExp(`vault.hashicorp.com/${annotation}: .* is not a JSON Patch`) } })
  }
  t.ok(s.logs.filter((l) => l.msg === 'admission' && l.decision === 'deny').length >= 2, 'each denial has its audit line')
  t.notOk(s.logs.some((l) => l.level >= 50), 'nothing logged as an internal error')
  t.ok(await stillServes(s))
})

t.test('a body declared in a charset other than UTF-8 is refused with 415, not misread', async (t) => {
  const s = await startServer()
  t.teardown(() => s.server.close())
  const utf16 = Buffer.from(example, 'utf16le')
  for (const contentType of ['application/json; charset=utf-16', 'application/json; charset=UTF-16LE', 'application/json;charset="latin1"']) {
    const r = await s.request('/mutate', { body: utf16, contentType })
    t.equal(r.status, 415, contentType)
    t.match(r.json().message, /charset must be utf-8/)
  }
  for (const contentType of ['application/json; charset=utf-8', 'application/json; charset="UTF-8"', 'application/json']) {
    t.equal((await s.request('/mutate', { body: example, contentType })).status, 200, contentType)
  }
})

t.test('TLS 1.2: ECDHE with AEAD only; TLS 1.3 as is', async (t) => {
  const s = await startServer()
  t.teardown(() => s.server.close())
  const attempt = async (ciphers: string): Promise<string> => {
    const socket = await connect(s, { maxVersion: 'TLSv1.2', ciphers }).catch(() => undefined)
    if (!socket) return 'refused'
    socket.end()
    return socket.getCipher().name
  }
  for (const weak of ['AES128-GCM-SHA256', 'AES256-SHA', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384', 'DHE-RSA-AES128-GCM-SHA256']) t.equal(await attempt(weak), 'refused', weak)
  for (const strong of ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305']) t.equal(await attempt(strong), strong)
  const v13 = await connect(s)
  t.equal(v13.getProtocol(), 'TLSv1.3')
  v13.end()
})

t.test('certificate pairs: expired, not yet valid or mismatched are refused, the last good stays, logged and counted', async (t) => {
  const s = await startServer()
  t.teardown(() => s.server.close())
  const serial = (await s.request('/health/ready', { agent: new https.Agent({ keepAlive: false }) })).serial
  const hour = 3_600_000
  const write = (certPem: string, keyPem: string): void => {
    writeFileSync(join(s.dir, 'tls.key.new'), keyPem)
    writeFileSync(join(s.dir, 'tls.crt.new'), certPem)
    renameSync(join(s.dir, 'tls.key.new'), join(s.dir, 'tls.key'))
    renameSync(join(s.dir, 'tls.crt.new'), join(s.dir, 'tls.crt'))
  }
  const expired = generateServingCert({ ca: s.ca, hosts: ['127.0.0.1'], validityMs: hour, issuedAt: Date.now() - 3 * hour })
  const future = generateServingCert({ ca: s.ca, hosts: ['127.0.0.1'], validityMs: hour, issuedAt: Date.now() + 2 * hour })
  const other = generateServingCert({ ca: s.ca, hosts: ['127.0.0.1'], validityMs: hour })
  for (const [certPem, keyPem, reason] of [[expired.certPem, expired.keyPem, 'expired'], [future.certPem, future.keyPem, 'not_yet_valid'], [other.certPem, expired.keyPem, 'key_mismatch']] as const) {
    write(certPem, keyPem)
    await until(async () => (await metric(s, 'vault_injector_certificates_refused_total')).some((line) => line.includes(reason)))
    const r = await s.request('/health/ready', { agent: new https.Agent({ keepAlive: false }) })
    t.equal(r.serial, serial, `${reason}: the last good certificate is still served`)
    t.ok((await metric(s, 'vault_injector_certificates_refused_total')).some((line) => line.endsWith(`{reason="${reason}"} 1`)), `${reason}: counted`)
  }
  t.ok(s.logs.some((l) => l.msg === 'new serving certificate not loaded; keeping the current one' && /expired at/.test(l.err)), 'the reason is logged')
  write(other.certPem, other.keyPem)
  await until(() => s.logs.some((l) => l.msg === 'serving certificate reloaded'))
  t.not((await s.request('/health/ready', { agent: new https.Agent({ keepAlive: false }) })).serial, serial, 'a good pair is swapped in')
})

// One review over `agent`: answered, or refused before the connection was
// accepted (the listener was closed, or closed with the connection still in
// its backlog: the API server's client then tries another endpoint).
function send(s: TestServer, agent: https.Agent): Promise<{ outcome: 'ok' | 'refused' | 'failed'; detail: string; close: boolean }> {
  return new Promise((resolve) => {
    let accepted = false
    const req = https.request(s.url + '/mutate', { method: 'POST', agent, ca: s.ca.certPem, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(example) } }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')))
      res.on('end', () => {
        const ok = res.statusCode === 200 && (JSON.parse(text) as Obj).response?.allowed === true
        resolve({ outcome: ok ? 'ok' : 'failed', detail: `HTTP ${res.statusCode}`, close: res.headers.connection === 'close' })
      })
    })
    req.on('socket', (socket) => {
      // A reused keep-alive socket was accepted long ago.
      if (!socket.connecting && (socket as tls.TLSSocket).encrypted && !(socket as Obj).pending) accepted = true
      socket.once('secureConnect', () => (accepted = true))
    })
    req.on('error', (error: NodeJS.ErrnoException) => {
      const refused = error.code === 'ECONNREFUSED' || (!accepted && error.code === 'ECONNRESET')
      resolve({ outcome: refused ? 'refused' : 'failed', detail: `${error.code} ${error.message}${accepted ? ' (after the connection was accepted)' : ''}`, close: false })
    })
    req.end(example)
  })
}

t.test('drain: 32 keep-alive clients sending back to back lose no review', async (t) => {
  const s = await startServer()
  const agent = new https.Agent({ keepAlive: true, maxSockets: 32 })
  t.teardown(() => agent.destroy())
  const outcome = { ok: 0, refused: 0, failed: 0, closeHeaders: 0 }
  const failures: string[] = []
  const client = async (): Promise<void> => {
    for (;;) {
      const r = await send(s, agent)
      outcome[r.outcome]++
      if (r.close) outcome.closeHeaders++
      if (r.outcome === 'failed') failures.push(r.detail)
      if (r.outcome === 'refused') return
    }
  }
  const clients = Promise.all(Array.from({ length: 32 }, client))
  await sleep(500)
  s.server.drain()
  t.equal((await s.request('/health/ready', { agent: new https.Agent({ keepAlive: false }) })).status, 503, 'readiness fails at once')
  await sleep(500)
  const okBeforeClose = outcome.ok
  await s.server.close()
  await clients
  t.equal(outcome.failed, 0, `no review failed: ${failures.slice(0, 3).join('; ')}`)
  t.ok(okBeforeClose > 32, `reviews answered during the drain (${okBeforeClose})`)
  t.ok(outcome.closeHeaders > 0, 'answers during the drain say Connection: close')
})

// A noisy neighbour at the API server's limits: pods whose annotations fill the 256 KiB the API server allows
// (thousands of secrets outside the policy, a template of a quarter MiB), sent alongside a good review. Each is
// answered, the denial lists at most 20 findings and a count of the rest, and the good review is answered too.
t.test('pods at the annotation size limit: answered, findings bounded, good reviews still served', async (t) => {
  const policy = parsePolicy(PINS, 'pins')
  const s = await startServer({}, { policy: () => policy })
  t.teardown(() => s.server.close())
  const secrets: Record<string, string> = {}
  for (let i = 0; i < 3_000; i++) secrets[`vault.hashicorp.com/agent-inject-secret-s${i}`] = `secret/data/team-b/${i}`
  const template = { 'vault.hashicorp.com/agent-inject-template-x': '{{ with secret "secret/data/team-b/x" }}' + '{{ .Data }}'.repeat(23_000) + '{{ end }}' }
  const pods = [annotatedPod(secrets), annotatedPod(template)]
  for (const pod of pods) t.ok(JSON.stringify(pod.metadata).length > 200_000, 'annotations near the API server\'s 256 KiB')
  const answers = await Promise.all([...pods, ...pods].map((pod) => s.request('/mutate', { body: review(pod) })))
  for (const r of answers) {
    t.equal(r.status, 200)
    const response = r.json().response
    t.equal(response.allowed, false)
    const findings = String(response.status.message).split('; ')
    t.ok(findings.length <= 21, `${findings.length} findings in the denial (20 and a count of the rest at most)`)
  }
  t.match(answers[0]!.json().response.status.message, /more policy finding\(s\) not shown/)
  t.ok(await stillServes(s))
})
