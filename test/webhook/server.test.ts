// The real server over real HTTPS: every endpoint, both AdmissionReview
// versions, every error path, and that the next good request still succeeds.
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import fastJsonPatch from 'fast-json-patch'
import { annotatedPod } from '../helpers/pods.ts'
import { startServer, type TestServer } from '../helpers/server.ts'
import { BODY_BYTES_IN_FLIGHT } from '../../src/webhook/server.ts'

type Obj = Record<string, any>
const example = JSON.parse(readFileSync(new URL('../../examples/admission-review.json', import.meta.url), 'utf8')) as Obj

function review(pod: Obj, overrides: Obj = {}, apiVersion = 'admission.k8s.io/v1'): Obj {
  return {
    apiVersion,
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${Math.random().toString(16).slice(2)}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'team-a',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object: pod,
      dryRun: false,
      ...overrides,
    },
  }
}

async function post(s: TestServer, body: unknown) {
  return s.request('/mutate', { body: JSON.stringify(body) })
}

// The next good request still succeeds.
async function stillServes(s: TestServer): Promise<boolean> {
  const r = await post(s, example)
  return r.status === 200 && r.json().response.allowed === true
}

let s: TestServer
t.before(async () => {
  s = await startServer({ AGENT_INJECT_LOG_LEVEL: 'info' })
})
t.teardown(async () => s.server.close())

t.test('v1 and v1beta1: the answer is in the request\'s version, with the uid and a base64 JSON Patch', async (t) => {
  for (const apiVersion of ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1']) {
    const pod = annotatedPod({ 'vault.hashicorp.com/agent-inject-secret-db': 'secret/db' })
    const body = review(pod, {}, apiVersion)
    const r = await post(s, body)
    t.equal(r.status, 200)
    const answer = r.json()
    t.equal(answer.apiVersion, apiVersion)
    t.equal(answer.kind, 'AdmissionReview')
    t.equal(answer.response.uid, body.request.uid)
    t.equal(answer.response.allowed, true)
    t.equal(answer.response.patchType, 'JSONPatch')
    const patch = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8'))
    const patched = fastJsonPatch.applyPatch(structuredClone(pod), patch, true, false).newDocument as Obj
    t.same(patched.spec.containers.map((c: Obj) => c.name), ['app', 'vault-agent'])
    t.equal(patched.metadata.annotations['vault.hashicorp.com/agent-inject-status'], 'injected')
  }
})

t.test('skips, denials, other kinds and operations', async (t) => {
  const plain = await post(s, review({ metadata: { name: 'p' }, spec: { containers: [{ name: 'a', image: 'b' }] } }))
  t.same(plain.json().response, { uid: plain.json().response.uid, allowed: true }, 'unannotated: allowed, no patch')

  const bad = await post(s, review(annotatedPod({ 'vault.hashicorp.com/agent-limits-cpu': 'lots' })))
  t.same(bad.json().response.status, { code: 400, message: 'vault.hashicorp.com/agent-limits-cpu: "lots" is not a Kubernetes quantity (e.g. 500m, 1)', reason: 'BadRequest' })
  t.equal(bad.json().response.allowed, false)

  const system = await post(s, review(annotatedPod({}), { namespace: 'kube-system' }))
  t.match(system.json().response, { allowed: false, status: { message: /cannot inject into system namespaces: kube-system/ } })

  const secret = await post(s, review({ metadata: { name: 'x' } }, { kind: { group: '', version: 'v1', kind: 'Secret' } }))
  t.same(Object.keys(secret.json().response).sort(), ['allowed', 'uid'])
  const update = await post(s, review(annotatedPod({}), { operation: 'UPDATE' }))
  t.same(Object.keys(update.json().response).sort(), ['allowed', 'uid'], 'UPDATE is allowed unchanged')
  const dry = await post(s, review(annotatedPod({}), { dryRun: true }))
  t.equal(dry.json().response.patchType, 'JSONPatch', 'dry run: same answer (no side effects to skip)')
  const warned = await post(s, review(annotatedPod({ 'vault.hashicorp.com/agnet-inject': 'true' })))
  t.match(warned.json().response.warnings, [/agnet-inject: unknown annotation/])
})

t.test('malformed requests get an HTTP error, never a crash', async (t) => {
  const cases: [string, Parameters<TestServer['request']>[1], number, RegExp][] = [
    ['wrong content type', { body: '{}', contentType: 'text/plain' }, 415, /Content-Type must be application\/json/],
    ['no content type', { body: '{}', contentType: null }, 415, /Content-Type/],
    ['empty body', { body: '' }, 400, /cannot be empty/],
    ['invalid JSON', { body: '{"apiVersion":' }, 400, /not valid JSON/],
    ['prototype pollution', { body: '{"__proto__":{"x":1}}' }, 400, /.+/],
    ['not an AdmissionReview', { body: '{"kind":"Pod"}' }, 400, /expected an AdmissionReview/],
    ['a JSON array', { body: '[1,2]' }, 400, /not a JSON object/],
    ['no request', { body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }) }, 400, /has no request/],
    ['no uid', { body: JSON.stringify({ ...review({}), request: { ...review({}).request, uid: '' } }) }, 400, /request.uid is missing/],
    ['no object', { body: JSON.stringify({ ...review({}), request: { ...review({}).request, object: undefined } }) }, 400, /request.object is missing/],
    ['object not an object', { body: JSON.stringify(review([] as unknown as Obj)) }, 400, /request.object is not an object/],
    ['deeply nested', { body: JSON.stringify(review({ metadata: { annotations: { 'vault.hashicorp.com/agent-inject': 'true' } }, spec: {} })).replace('"spec":{}', `"spec":{"x":${'['.repeat(5000)}${']'.repeat(5000)}}`) }, 400, /nests deeper than 100 levels/],
    ['wrong method', { method: 'GET' }, 404, /no route/],
  ]
  for (const [name, options, status, message] of cases) {
    const r = await s.request('/mutate', options)
    t.equal(r.status, status, name)
    t.match(r.json(), { statusCode: status, error: String, message }, name)
  }
  const big = Buffer.alloc(7 * 1024 * 1024, 'a')
  const tooLarge = await s.request('/mutate', { body: big })
  t.equal(tooLarge.status, 413, 'oversized body')
  t.match(tooLarge.json().message, /larger than the limit/)
  const withinLimit = review(annotatedPod({ 'vault.hashicorp.com/agent-inject-template-big': 'x'.repeat(3 * 1024 * 1024) }))
  t.equal((await post(s, withinLimit)).status, 200, 'a 3 MiB object (the API server\'s limit) is accepted')
  t.ok(await stillServes(s), 'the next good request still succeeds')
})

t.test('wrong shapes inside the pod are denied with a message', async (t) => {
  const shapes: [Obj, RegExp][] = [
    [{ metadata: { annotations: { 'vault.hashicorp.com/agent-inject': 'true' } }, spec: { containers: 'web' } }, /spec.containers is not a list of objects/],
    [{ metadata: { annotations: { 'vault.hashicorp.com/agent-inject': 'true' } }, spec: { containers: [] } }, /spec.containers is empty/],
    [{ metadata: { annotations: { 'vault.hashicorp.com/agent-inject': true } }, spec: { containers: [{ name: 'a' }] } }, /agent-inject: "true" is not a boolean/],
    [{ metadata: { annotations: { 'vault.hashicorp.com/agent-inject': 'true', 'vault.hashicorp.com/role': 7 } }, spec: { containers: [{ name: 'a' }] } }, /role: annotation values must be strings/],
    [{ metadata: { annotations: { 'vault.hashicorp.com/agent-inject': 'true' } } }, /the pod has no spec/],
    [annotatedPod({ 'vault.hashicorp.com/agent-limits-mem': 'bad\u0000\u001b[31m' + 'y'.repeat(100_000) }), /agent-limits-mem: "bad\\u0000\\u001b\[31my+…" is not a Kubernetes quantity/],
  ]
  for (const [pod, message] of shapes) {
    const r = await post(s, review(pod))
    t.equal(r.status, 200)
    t.equal(r.json().response.allowed, false)
    t.match(r.json().response.status.message, message)
  }
  t.ok(await stillServes(s), 'the next good request still succeeds')
})

t.test('health, metrics and the audit line', async (t) => {
  t.equal((await s.request('/health/ready')).status, 204)
  t.equal((await s.request('/health/live')).status, 204)
  const metrics = (await s.request('/metrics')).text
  t.match(metrics, /vault_agent_injector_request_queue_length 0/)
  t.match(metrics, /vault_agent_injector_request_processing_duration_ms_bucket\{le="5"\}/)
  t.match(metrics, /vault_agent_injector_injections_by_namespace_total\{namespace="team-a",injection_type="init_and_sidecar"\} [1-9]/)
  t.match(metrics, /vault_agent_injector_failed_injections_by_namespace_total\{namespace="team-a"\} [1-9]/)
  t.match(metrics, /vault_injector_request_duration_seconds_bucket/)
  t.match(metrics, /process_resident_memory_bytes/)
  const expiry = Number(/^vault_injector_serving_certificate_expiry_timestamp_seconds (\d+)$/m.exec(metrics)?.[1])
  t.ok(expiry > Date.now() / 1000, `the serving certificate's expiry, in seconds since the epoch: ${expiry}`)

  const before = s.logs.length
  const body = review(annotatedPod({ 'vault.hashicorp.com/agent-inject-secret-db': 'database/creds/app', 'vault.hashicorp.com/agent-inject-template-cfg': '{{ with secret "kv/data/cfg" }}{{ .Data.data.x }}{{ end }}' }))
  await post(s, body)
  const lines = s.logs.slice(before).filter((l) => l.msg === 'admission')
  t.equal(lines.length, 1, 'one line per decision')
  t.match(lines[0], { uid: body.request.uid, namespace: 'team-a', pod: 'app', serviceAccount: 'app', role: 'app', decision: 'inject', secretPaths: ['kv/data/cfg', 'database/creds/app'], user: 'system:serviceaccount:kube-system:replicaset-controller' })
  t.type(lines[0]!.durationMs, 'number')
})

t.test('no secret value ever reaches the logs', async (t) => {
  const canary = 'CANARY-7f3e9a1c-s3cr3t'
  const pod = annotatedPod({
    'vault.hashicorp.com/agent-inject-template-db': `{{ with secret "db" }}${canary}{{ end }}`,
    'vault.hashicorp.com/agent-limits-cpu': canary,
  })
  pod.spec = { ...(pod.spec as Obj), containers: [{ name: 'app', image: 'a', env: [{ name: 'PASSWORD', value: canary }] }] }
  await post(s, review(pod))
  const good = annotatedPod({ 'vault.hashicorp.com/agent-inject-template-db': `{{ with secret "db" }}${canary}{{ end }}` })
  ;(good.spec as Obj).containers[0].env = [{ name: 'PASSWORD', value: canary }]
  await post(s, review(good))
  await s.request('/mutate', { body: `{"broken": "${canary}` })
  const all = JSON.stringify(s.logs)
  t.notOk(all.includes(canary), 'the canary is in no log line')
  t.ok(s.logs.some((l) => l.msg === 'admission' && l.decision === 'deny'), 'the denial was logged (without its value)')
})

t.test('bounded concurrency: beyond the limit, 503 at once', async (t) => {
  const limited = await startServer({ AGENT_INJECT_MAX_CONCURRENT_REQUESTS: '1' })
  t.teardown(() => limited.server.close())
  // Hold one review open: headers sent, body not finished.
  const held = https.request(limited.url + '/mutate', { method: 'POST', ca: limited.ca.certPem, headers: { 'content-type': 'application/json', 'content-length': 1000 } })
  held.on('error', () => {})
  held.write('{')
  await new Promise((r) => setTimeout(r, 200))
  const refused = await limited.request('/mutate', { body: JSON.stringify(example) })
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '1')
  held.destroy()
  await new Promise((r) => setTimeout(r, 200))
  t.equal((await limited.request('/mutate', { body: JSON.stringify(example) })).status, 200, 'served again once the slot is free')
})

t.test('the API server\'s /mutate?timeout=10s is a review like any other, and counts against the limit', async (t) => {
  const limited = await startServer({ AGENT_INJECT_MAX_CONCURRENT_REQUESTS: '1' })
  t.teardown(() => limited.server.close())
  const ok = await limited.request('/mutate?timeout=10s', { body: JSON.stringify(example) })
  t.equal(ok.status, 200)
  t.equal(ok.json().response.patchType, 'JSONPatch')
  const held = https.request(limited.url + '/mutate?timeout=10s', { method: 'POST', ca: limited.ca.certPem, headers: { 'content-type': 'application/json', 'content-length': 1000 } })
  held.on('error', () => {})
  held.write('{')
  await new Promise((r) => setTimeout(r, 200))
  t.equal((await limited.request('/mutate?timeout=10s', { body: JSON.stringify(example) })).status, 503, 'the held review took the only slot')
  t.match((await limited.request('/metrics')).text, /vault_agent_injector_request_queue_length 1/)
  held.destroy()
  await new Promise((r) => setTimeout(r, 200))
  t.match((await limited.request('/metrics')).text, /vault_agent_injector_request_queue_length 0/, 'an aborted request gives its slot back')
})

t.test('the duration histogram counts every answer by code and decision; the metrics path is a setting', async (t) => {
  const m = await startServer({ AGENT_INJECT_TELEMETRY_PATH: '/custom-metrics' })
  t.teardown(() => m.server.close())
  await m.request('/mutate', { body: '{}', contentType: 'text/plain' })
  await m.request('/mutate', { body: JSON.stringify(example) })
  await m.request('/mutate', { body: JSON.stringify(review(annotatedPod({ 'vault.hashicorp.com/agent-limits-cpu': 'lots' }))) })
  t.equal((await m.request('/metrics')).status, 404, 'not at the default path')
  const text = (await m.request('/custom-metrics')).text
  t.match(text, /vault_injector_request_duration_seconds_count\{code="415",decision="invalid"\} 1/)
  t.match(text, /vault_injector_request_duration_seconds_count\{code="200",decision="inject"\} 1/)
  t.match(text, /vault_injector_request_duration_seconds_count\{code="200",decision="deny"\} 1/)
  t.match(text, /vault_agent_injector_request_processing_duration_ms_count 2/, 'processing time for the two reviews that reached the engine')
  t.match(text, /vault_agent_injector_injections_by_namespace_total\{namespace="shop",injection_type="init_and_sidecar"\} 1/)
  t.match(text, /vault_agent_injector_failed_injections_by_namespace_total\{namespace="team-a"\} 1/)
})

t.test('cipher suites by vault-k8s (Go) names, and a TLS 1.3 floor', async (t) => {
  const tls = await import('node:tls')
  const handshake = (port: number, ca: string, options: import('node:tls').ConnectionOptions): Promise<string> =>
    new Promise((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca, ...options }, () => {
        resolve(`${socket.getProtocol()} ${socket.getCipher().name}`)
        socket.end()
      })
      socket.on('error', () => resolve('refused'))
    })
  const c = await startServer({ AGENT_INJECT_TLS_CIPHER_SUITES: 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384' })
  t.teardown(() => c.server.close())
  t.equal(await handshake(c.port, c.ca.certPem, { maxVersion: 'TLSv1.2' }), 'TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384')
  t.equal(await handshake(c.port, c.ca.certPem, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }), 'refused', 'a suite not listed is refused')
  t.match(await handshake(c.port, c.ca.certPem, {}), /^TLSv1\.3 /, 'TLS 1.3 still works')

  const v13 = await startServer({ AGENT_INJECT_TLS_MIN_VERSION: 'tls13' })
  t.teardown(() => v13.server.close())
  t.equal(await handshake(v13.port, v13.ca.certPem, { maxVersion: 'TLSv1.2' }), 'refused')
  t.match(await handshake(v13.port, v13.ca.certPem, {}), /^TLSv1\.3 /)
})

t.test('certificate files rotate while requests are in flight: no request fails', async (t) => {
  const r = await startServer()
  t.teardown(() => r.server.close())
  const firstSerial = (await r.request('/health/ready')).serial
  let failures = 0
  let done = 0
  const worker = async (): Promise<void> => {
    for (let i = 0; i < 40; i++) {
      try {
        const res = await r.request('/mutate', { body: JSON.stringify(example) })
        if (res.status !== 200 || res.json().response.allowed !== true) failures++
      } catch {
        failures++
      }
      done++
    }
  }
  const load = Promise.all(Array.from({ length: 8 }, worker))
  await new Promise((resolve) => setTimeout(resolve, 50))
  const newCert = r.rotate()
  await load
  t.equal(failures, 0, `${done} reviews during rotation, none failed`)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const after = await r.request('/health/ready', { agent: new https.Agent({ keepAlive: false }) })
  t.not(after.serial, firstSerial, 'a new connection gets the new certificate')
  t.equal(after.serial, new X509Certificate(newCert).serialNumber)
  t.ok(r.logs.some((l) => l.msg === 'serving certificate reloaded'))
})

t.test('a broken certificate file keeps the last good one', async (t) => {
  const r = await startServer()
  t.teardown(() => r.server.close())
  const serial = (await r.request('/health/ready')).serial
  const { writeFileSync } = await import('node:fs')
  writeFileSync(`${r.dir}/tls.crt`, 'not a certificate')
  await new Promise((resolve) => setTimeout(resolve, 100))
  const still = await r.request('/health/ready', { agent: new https.Agent({ keepAlive: false }) })
  t.equal(still.status, 204)
  t.equal(still.serial, serial)
  t.ok(r.logs.some((l) => l.msg === 'new serving certificate not loaded; keeping the current one'))
})

t.test('TLS 1.2 at least', async (t) => {
  const tls = await import('node:tls')
  const attempt = (maxVersion: 'TLSv1.1' | 'TLSv1.2'): Promise<string> =>
    new Promise((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: s.port, ca: s.ca.certPem, minVersion: 'TLSv1', maxVersion }, () => {
        resolve(socket.getProtocol() ?? '')
        socket.end()
      })
      socket.on('error', () => resolve('refused'))
    })
  t.equal(await attempt('TLSv1.1'), 'refused')
  t.equal(await attempt('TLSv1.2'), 'TLSv1.2')
})

t.test('graceful shutdown finishes the review in flight', async (t) => {
  const g = await startServer()
  const body = JSON.stringify(example)
  const agent = new https.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  const answer = new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
    const req = https.request(g.url + '/mutate', { method: 'POST', agent, ca: g.ca.certPem, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }))
    })
    req.on('error', reject)
    req.write(body.slice(0, 10))
    setTimeout(() => req.end(body.slice(10)), 300)
  })
  await new Promise((r) => setTimeout(r, 100))
  const closed = g.server.close()
  const { status, connection } = await answer
  t.equal(status, 200, 'the request in flight got its answer')
  t.equal(connection, 'close', 'and its keep-alive connection is closed, so it cannot hold up the shutdown')
  await closed
  await t.rejects(g.request('/health/ready', { agent: new https.Agent({ keepAlive: false }) }), 'no new connections after close')
})

// A slow client cannot hold a socket: a connection that never finishes its
// TLS handshake, its headers or its body is closed once its limit passes, and
// the server answers the next client meanwhile.
t.test('slow clients are cut off by the handshake, header and request timeouts', async (t) => {
  const tls = await import('node:tls')
  const net = await import('node:net')
  const timeouts = { handshakeMs: 300, headersMs: 400, requestMs: 600, checkIntervalMs: 100 }
  const slow = await startServer({}, { timeouts })
  t.teardown(() => slow.server.close())

  // Resolves with how long the server took to end the connection, and what it sent.
  const endedAfter = (socket: import('node:net').Socket): Promise<{ ms: number; text: string }> => {
    const started = Date.now()
    let text = ''
    return new Promise((resolve) => {
      socket.on('data', (chunk: Buffer) => { text += chunk.toString('utf8') })
      socket.on('error', () => {})
      socket.on('close', () => resolve({ ms: Date.now() - started, text }))
    })
  }

  // No TLS handshake at all: a plain TCP connection that sends nothing.
  const silent = net.connect({ host: '127.0.0.1', port: slow.port })
  const handshake = await endedAfter(silent)
  t.ok(handshake.ms >= 250 && handshake.ms < 5_000, `a connection without a handshake is closed (${handshake.ms} ms)`)

  const secure = (): Promise<import('node:tls').TLSSocket> =>
    new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: slow.port, ca: slow.ca.certPem }, () => resolve(socket))
      socket.on('error', reject)
    })

  // Headers that never end.
  const trickle = await secure()
  const headersEnded = endedAfter(trickle)
  trickle.write('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n')
  const headers = await headersEnded
  t.match(headers.text, /^HTTP\/1\.1 408/, 'unfinished headers get 408 Request Timeout')
  t.ok(headers.ms < 5_000, `and the socket is closed (${headers.ms} ms)`)

  // Headers complete, body promised but never sent in full.
  const stalled = await secure()
  const bodyEnded = endedAfter(stalled)
  stalled.write('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"apiVersion"')
  const body = await bodyEnded
  t.match(body.text, /^HTTP\/1\.1 408/, 'an unfinished body gets 408 Request Timeout')
  t.ok(body.ms >= 500 && body.ms < 5_000, `once the request limit passes (${body.ms} ms)`)

  const r = await slow.request('/mutate', { body: JSON.stringify(example) })
  t.equal(r.status, 200, 'the next good request still succeeds')
})

t.test('bounded memory: review bodies in flight beyond BODY_BYTES_IN_FLIGHT get 503 at once; small reviews still fit', async (t) => {
  const s = await startServer()
  t.teardown(() => s.server.close())
  const big = Math.floor(BODY_BYTES_IN_FLIGHT * 0.6)
  // Hold one large review open: headers sent, body not finished.
  const hold = (): ReturnType<typeof https.request> => {
    const held = https.request(s.url + '/mutate', { method: 'POST', ca: s.ca.certPem, headers: { 'content-type': 'application/json', 'content-length': big } })
    held.on('error', () => {})
    held.write('{')
    return held
  }
  const first = hold()
  await new Promise((r) => setTimeout(r, 200))
  const second = await new Promise<number>((resolve) => {
    const req = https.request(s.url + '/mutate', { method: 'POST', ca: s.ca.certPem, headers: { 'content-type': 'application/json', 'content-length': big } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', () => resolve(0))
    req.write('{')
  })
  t.equal(second, 503, 'a second large body would pass the budget')
  t.equal((await s.request('/mutate', { body: JSON.stringify(example) })).status, 200, 'a typical review still fits beside the held one')
  first.destroy()
  await new Promise((r) => setTimeout(r, 200))
  const again = hold()
  await new Promise((r) => setTimeout(r, 200))
  t.match((await s.request('/metrics')).text, /vault_agent_injector_request_queue_length 1/, 'the aborted body gave its bytes back: the next large one was taken')
  again.destroy()
})

t.test('readiness waits for the namespace labels when, and only when, the policy selects namespaces by label', async (t) => {
  const { parsePolicy } = await import('../../src/policy/load.ts')
  const doc = (namespaces: string) => `apiVersion: vault-injector.dev/v1alpha1\nkind: InjectorPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: r\n      namespaces: ${namespaces}\n      allow: {roles: [app]}\n`
  const bySelector = parsePolicy(doc('{selector: {matchLabels: {team: shop}}}'), 'p')
  const byName = parsePolicy(doc('{names: [shop]}'), 'p')
  let synced = false
  let policy = bySelector
  const r = await startServer({}, { policy: () => policy, namespaceLabels: () => undefined, namespacesSynced: () => synced })
  t.teardown(() => r.server.close())
  t.equal((await r.request('/health/ready')).status, 503, 'labels not listed yet, a rule selects by label: not ready')
  policy = byName
  t.equal((await r.request('/health/ready')).status, 204, 'no rule selects by label: ready without the labels')
  policy = bySelector
  synced = true
  t.equal((await r.request('/health/ready')).status, 204, 'listed: ready')
})
