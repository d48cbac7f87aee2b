// The HTTPS server: fastify, TLS from a CertSource (swapped in place when it
// rotates), POST /mutate, health and metrics. Every error path answers; none
// can take the process down.
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { Server as HttpsServer } from 'node:https'
import type { Logger as PinoLogger } from 'pino'
import type { Settings } from '../settings.ts'
import type { PolicyEvaluator } from '../policy/types.ts'
import type { CertPair, CertSource } from '../tls/source.ts'
import type { Socket } from 'node:net'
import { admit, type AdmissionOutcome } from './admission.ts'
import { AdmissionGate, type Slot } from './gate.ts'
import { createMetrics, registerCertificateExpiry, type WebhookMetrics } from './metrics.ts'
import { cipherList } from '../tls/ciphers.ts'
import { parseListen } from './settings.ts'

// Required, not imported: an ESM import of node:http reads every export for
// the module's facade, and one of them loads Node's fetch (undici): ~60 ms of
// start-up and several MiB for nothing. node:http must not be imported by
// anything `serve` loads.
const { STATUS_CODES } = createRequire(import.meta.url)('node:http') as typeof import('node:http')

export interface ServerOptions {
  settings: Settings
  certSource: CertSource
  // Read per request, so a reloaded policy takes effect at once.
  policy?: () => PolicyEvaluator | undefined
  namespaceLabels?: (namespace: string) => Readonly<Record<string, string>> | undefined
  // Whether the namespace watch has listed once. While it has not, and the
  // policy selects namespaces by label, the webhook is not ready: label rules
  // would fail closed for every namespace.
  namespacesSynced?: () => boolean
  // One JSON-lines logger for the whole process (see createLogger).
  logger: PinoLogger
  // Slow-client limits; the defaults below suit production, tests shorten them.
  timeouts?: Partial<ServerTimeouts>
  // Body bytes all reviews in flight may hold together (default:
  // BODY_BYTES_IN_FLIGHT, at least one body of AGENT_INJECT_MAX_BODY_BYTES).
  bodyBytesInFlight?: number
}

export interface ServerTimeouts {
  handshakeMs: number
  headersMs: number
  // Headers and body together.
  requestMs: number
  // A review holds its slot at most this long, answer included; then its
  // connection is cut. The API server waits at most timeoutSeconds (≤ 30 s,
  // 10 s by default), so nobody is waiting for it any more.
  slotMs: number
  // How often Node (and the gate) look for requests past those limits.
  checkIntervalMs: number
}

export interface WebhookServer {
  app: FastifyInstance<HttpsServer, IncomingMessage, ServerResponse, PinoLogger>
  metrics: WebhookMetrics
  gate: AdmissionGate
  listen(): Promise<string>
  // Fail readiness and close keep-alive connections after their next answer,
  // while still answering (the first step of a graceful shutdown).
  drain(): void
  // Stop accepting, finish the reviews in flight, then close.
  close(): Promise<void>
}

// Slow clients get this long for the TLS handshake, the headers, and the
// whole request: well inside the API server's default webhook timeout of
// 10 s (it sends a review in milliseconds). Node looks for requests past
// them every half second rather than its default 30 s.
const DEFAULT_TIMEOUTS: ServerTimeouts = { handshakeMs: 3_000, headersMs: 3_000, requestMs: 5_000, slotMs: 10_000, checkIntervalMs: 500 }
// Reviews a client may have in flight on one connection (pipelining). The
// API server sends one at a time.
const MAX_REVIEWS_PER_CONNECTION = 4
// Longer than the API server's idle connection reuse, so it rarely races a close.
const KEEP_ALIVE_TIMEOUT_MS = 65_000
// Bytes of review bodies being processed at once (by Content-Length, or the
// largest body accepted when there is none). This, not the count of reviews,
// bounds the heap: a parsed review holds about 1.5× its body besides the body
// itself, so 8 MiB in flight is some 24 MiB of live heap, well inside the heap
// bound `npm start` and the image give Node (README, Performance). Never less
// than one largest body, so any accepted review can be served alone.
export const BODY_BYTES_IN_FLIGHT = 8 * 1024 * 1024

function tlsOptions(settings: Settings, pair: CertPair): { cert: string; key: string; minVersion: 'TLSv1.2' | 'TLSv1.3'; ciphers: string; honorCipherOrder: boolean } {
  return {
    cert: pair.certPem,
    key: pair.keyPem,
    minVersion: settings.tlsMinVersion === 'tls13' ? 'TLSv1.3' : 'TLSv1.2',
    ciphers: cipherList(settings.tlsCipherSuites),
    honorCipherOrder: true,
  }
}

// JSON is UTF-8 (RFC 8259); a body declared in another charset is refused
// rather than misread.
function charsetOf(contentType: string | undefined): string | undefined {
  const match = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(contentType ?? '')
  return match ? match[1]!.toLowerCase() : undefined
}

// vault-k8s's `:8080` means every interface. '::' is dual-stack on Linux, but
// fails where IPv6 is switched off; then IPv4's every-interface address.
async function listenOn(app: FastifyInstance<HttpsServer, IncomingMessage, ServerResponse, PinoLogger>, host: string, port: number): Promise<string> {
  if (host !== '::') return app.listen({ host, port })
  try {
    return await app.listen({ host, port })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw error
    return app.listen({ host: '0.0.0.0', port })
  }
}

// Every HTTP error has one shape: fastify's {statusCode, error, message}.
function errorBody(statusCode: number, message: string): { statusCode: number; error: string; message: string } {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message }
}

function errorAnswer(error: FastifyError): { statusCode: number; message: string } {
  const statusCode = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { statusCode, message: 'request body is larger than the limit (AGENT_INJECT_MAX_BODY_BYTES)' }
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return { statusCode: 415, message: 'Content-Type must be application/json' }
  // A client that cannot send valid JSON (or sends JSON no parser should
  // follow) gets a 400 whatever the parser threw.
  if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError || error instanceof RangeError) return { statusCode: 400, message: 'the body is not valid JSON' }
  if (statusCode >= 500) return { statusCode, message: 'internal error' }
  return { statusCode, message: error.message }
}

function noSchemaCompiler(): never {
  throw new Error('route schemas are not supported: the server is built without a schema compiler')
}

export async function buildServer(options: ServerOptions): Promise<WebhookServer> {
  const { settings, certSource } = options
  const first = await certSource.ready()
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts }
  const app = Fastify({
    https: {
      ...tlsOptions(settings, first),
      handshakeTimeout: timeouts.handshakeMs,
      connectionsCheckingInterval: timeouts.checkIntervalMs,
    },
    loggerInstance: options.logger,
    // One audit line per review instead of fastify's two lines per request.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: settings.maxBodyBytes,
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // A review that reached us while we shut down is answered, not refused:
    // the API server had already sent it (the load test counted 503s here).
    return503OnClosing: false,
    // No route declares a JSON schema, so fastify's default compilers (Ajv and
    // fast-json-stringify, ~0.5 MB of code and ~10 MiB resident) are never
    // loaded; these say so loudly should one ever be added.
    schemaController: { compilersFactory: { buildValidator: noSchemaCompiler, buildSerializer: noSchemaCompiler } },
    // close() ends connections itself (see there).
    forceCloseConnections: false,
  })
  // JSON only: anything else gets 415, never a parse attempt.
  app.removeContentTypeParser('text/plain')
  const server = app.server
  server.headersTimeout = timeouts.headersMs
  certSource.onChange((pair) => {
    server.setSecureContext(tlsOptions(settings, pair))
    app.log.info('serving certificate swapped in')
  })

  const metrics = createMetrics()
  registerCertificateExpiry(metrics.registry, () => certSource.current())
  certSource.onRejected?.((reason) => metrics.certificatesRefused.labels(reason).inc())
  const gate = new AdmissionGate({ maxRequests: settings.maxConcurrentRequests, maxBodyBytes: options.bodyBytesInFlight ?? Math.max(BODY_BYTES_IN_FLIGHT, settings.maxBodyBytes) })
  let closing = false

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const answer = errorAnswer(error)
    if (answer.statusCode >= 500) request.log.error({ err: error }, 'request failed')
    else request.log.warn({ statusCode: answer.statusCode, reason: answer.message, url: request.url }, 'request rejected')
    void reply.code(answer.statusCode).send(errorBody(answer.statusCode, answer.message))
  })
  app.setNotFoundHandler((request, reply) => void reply.code(404).send(errorBody(404, `no route for ${request.method} ${request.url}`)))

  // Per /mutate request: its slot (if it got one), and the decision (for the
  // duration histogram's label).
  const reviews = new WeakMap<FastifyRequest, { slot?: Slot; decision: string }>()
  // Per connection: the slots its reviews hold, all given back when it closes.
  const connections = new WeakMap<Socket, Set<Slot>>()
  const isReview = (request: FastifyRequest): boolean => request.method === 'POST' && request.routeOptions.url === '/mutate'

  const showLoad = (): void => {
    metrics.queueLength.set(gate.inFlight)
  }
  const releaseSlot = (socket: Socket, slot: Slot): void => {
    gate.release(slot)
    connections.get(socket)?.delete(slot)
    showLoad()
  }
  const slotsOf = (socket: Socket): Set<Slot> => {
    let slots = connections.get(socket)
    if (!slots) {
      const created = new Set<Slot>()
      connections.set(socket, created)
      socket.once('close', () => {
        for (const slot of created) gate.release(slot)
        created.clear()
        showLoad()
      })
      slots = created
    }
    return slots
  }
  // No review holds a slot past slotMs, whatever its client does.
  const sweep = setInterval(() => {
    if (gate.expire(performance.now() - timeouts.slotMs) > 0) showLoad()
  }, timeouts.checkIntervalMs)
  sweep.unref()

  // A bound on reviews held at once (see gate.ts): beyond it the API server
  // gets a 503 at once (and retries or applies failurePolicy) instead of a
  // slow answer. The route, not the URL: the API server calls /mutate?timeout=10s.
  // The hooks take a callback rather than returning a promise: each promise
  // cost a trip through the microtask queue on every review (measured as part
  // of the CPU per review, README Performance). A hook that answers does not
  // call done.
  app.addHook('onRequest', (request, reply, done) => {
    const charset = charsetOf(request.headers['content-type'])
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      void reply.code(415).send(errorBody(415, `Content-Type charset must be utf-8 (got "${charset.slice(0, 40)}")`))
      return
    }
    if (!isReview(request)) {
      done()
      return
    }
    const socket = request.raw.socket
    const slots = slotsOf(socket)
    const declared = Number(request.headers['content-length'])
    const bytes = request.headers['content-length'] !== undefined && Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, settings.maxBodyBytes) : settings.maxBodyBytes
    const slot = slots.size < MAX_REVIEWS_PER_CONNECTION ? gate.take(bytes, performance.now(), () => socket.destroy()) : undefined
    if (!slot) {
      reviews.set(request, { decision: 'overloaded' })
      void reply.code(503).header('retry-after', '1').send(errorBody(503, 'too many reviews in flight'))
      return
    }
    slots.add(slot)
    reviews.set(request, { slot, decision: 'invalid' })
    showLoad()
    // The answer's end, whichever way it ends (a queued pipelined answer
    // whose connection dies emits no 'finish').
    reply.raw.once('close', () => releaseSlot(socket, slot))
    done()
  })
  // The body is in: the review can no longer be cut off as a slow sender.
  app.addHook('preValidation', (request, _reply, done) => {
    const slot = reviews.get(request)?.slot
    if (slot) slot.receiving = false
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    const state = reviews.get(request)
    if (state) {
      if (state.slot) releaseSlot(request.raw.socket, state.slot)
      // Received to sent, whatever the answer (415, 413 and 503 included).
      metrics.requestSeconds.labels(String(reply.statusCode), state.decision).observe(reply.elapsedTime / 1000)
    }
    done()
  })
  app.addHook('onRequestAbort', (request, done) => {
    const slot = reviews.get(request)?.slot
    if (slot) releaseSlot(request.raw.socket, slot)
    done()
  })
  // While shutting down, answers close their connection: a client's idle
  // keep-alive socket would otherwise hold the close open until it times out.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) void reply.header('connection', 'close')
    done(null, payload)
  })

  app.post('/mutate', async (request: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now()
    const outcome = admit(request.body, {
      settings,
      policy: options.policy?.(),
      namespaceLabels: options.namespaceLabels,
    })
    if (outcome.audit?.decision === 'error') request.log.error({ err: outcome.error }, 'judging the review failed')
    const durationMs = performance.now() - started
    record(metrics, outcome, durationMs)
    if (outcome.audit) request.log.info({ ...outcome.audit, durationMs: Number(durationMs.toFixed(3)) }, 'admission')
    else request.log.warn({ statusCode: outcome.statusCode, reason: outcome.body.message }, 'request rejected')
    const state = reviews.get(request)
    if (state && outcome.audit) state.decision = outcome.audit.decision
    return reply.code(outcome.statusCode).send(outcome.body)
  })

  // Not ready while shutting down, before a certificate, with every slot
  // taken (a slot is held at most slotMs, so this passes), or while a policy
  // that selects namespaces by label does not know their labels yet.
  const labelsPending = (): boolean => options.namespacesSynced !== undefined && !options.namespacesSynced() && options.policy?.()?.selectsByLabel?.() === true
  app.get('/health/ready', async (_request, reply) => reply.code(closing || !certSource.current() || gate.full || labelsPending() ? 503 : 204).send())
  app.get('/health/live', async (_request, reply) => reply.code(204).send())
  app.get(settings.telemetryPath || '/metrics', async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })

  return {
    app,
    metrics,
    gate,
    async listen() {
      // Checked when the settings were loaded.
      const { host, port } = parseListen(settings.listen)!
      return listenOn(app, host, port)
    },
    drain() {
      closing = true
    },
    async close() {
      closing = true
      // The listener closes now and Node closes the idle keep-alive
      // connections with it; a busy one closes after its answer (Connection:
      // close). Whatever a client does, every connection is gone after slotMs.
      const all = setTimeout(() => server.closeAllConnections(), timeouts.slotMs)
      try {
        await app.close()
      } finally {
        clearTimeout(all)
        clearInterval(sweep)
        await certSource.close()
      }
    },
  }
}

function record(metrics: WebhookMetrics, outcome: AdmissionOutcome, durationMs: number): void {
  metrics.processingMs.observe(durationMs)
  const audit = outcome.audit
  if (!audit) return
  if (audit.decision === 'inject' && audit.injectionType) metrics.injections.labels(metrics.namespaceLabel(audit.namespace), audit.injectionType).inc()
  if (audit.decision === 'deny' || audit.decision === 'error') metrics.failedInjections.labels(metrics.namespaceLabel(audit.namespace)).inc()
}
