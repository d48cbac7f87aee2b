// AdmissionReview in, AdmissionReview out. No HTTP here: the server, the
// `review` command and the tests call this one function, so they answer alike.
import type { Settings } from '../settings.ts'
import type { JsonObject } from '../engine/types.ts'
import { judge, redactValues } from '../policy/judge.ts'
import type { PolicyEvaluator, PolicyFinding } from '../policy/types.ts'

export { redactValues }

const API_VERSIONS = new Set(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'])
// Real pods nest about a dozen levels; anything far deeper is hostile.
export const MAX_DEPTH = 100
const MAX_WARNING_CHARS = 256

export interface AdmissionDeps {
  settings: Settings
  policy?: PolicyEvaluator | undefined
  // A namespace's labels, or undefined while it is unknown. Without it (no
  // cluster configured) every namespace's labels are unknown.
  namespaceLabels?: ((namespace: string) => Readonly<Record<string, string>> | undefined) | undefined
}

// The audit record: who asked for which secret, and what was decided. It
// holds names and Vault paths, never annotation values or secret contents.
export interface AuditRecord {
  uid: string
  namespace: string
  pod: string
  serviceAccount: string
  user?: string
  operation: string
  dryRun: boolean
  role?: string
  secretPaths?: string[]
  decision: 'inject' | 'skip' | 'deny' | 'ignore' | 'error'
  reason: string
  warnings: number
  policyFindings?: PolicyFinding[]
  injectionType?: string
}

export interface AdmissionOutcome {
  // HTTP status: 200 for every well-formed review (the verdict is inside),
  // 400 for a body that is not one.
  statusCode: number
  body: JsonObject
  audit?: AuditRecord
  // Set when judging threw (decision 'error'): for the error log, not the client.
  error?: unknown
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// The same shape as every other HTTP error the server sends (fastify's).
function badRequest(message: string): AdmissionOutcome {
  return { statusCode: 400, body: { statusCode: 400, error: 'Bad Request', message } }
}

// Recursive, but never deeper than `limit` frames, so a hostile document
// cannot exhaust the stack here. No allocation per node: on the large pod
// the earlier walk (a tuple and an Object.values array per object) was a
// tenth of the server's time.
export function depthExceeds(value: unknown, limit: number): boolean {
  return deeperThan(value, limit)
}

function deeperThan(node: unknown, levelsLeft: number): boolean {
  if (typeof node !== 'object' || node === null) return false
  if (levelsLeft === 0) return true
  if (Array.isArray(node)) {
    for (const child of node) if (deeperThan(child, levelsLeft - 1)) return true
    return false
  }
  const record = node as Record<string, unknown>
  for (const key in record) if (Object.hasOwn(record, key) && deeperThan(record[key], levelsLeft - 1)) return true
  return false
}

function podLabel(pod: JsonObject): string {
  const metadata = isObject(pod.metadata) ? pod.metadata : {}
  if (typeof metadata.name === 'string' && metadata.name !== '') return metadata.name
  if (typeof metadata.generateName === 'string') return `${metadata.generateName}*`
  return ''
}

function cleanWarning(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, ' ')
  return clean.length > MAX_WARNING_CHARS ? clean.slice(0, MAX_WARNING_CHARS - 1) + '…' : clean
}

function respond(review: JsonObject, response: JsonObject): JsonObject {
  return { apiVersion: review.apiVersion, kind: 'AdmissionReview', response }
}

interface Request {
  uid: string
  namespace: string
  operation: string
  dryRun: boolean
  kind: string
  object?: JsonObject
  user?: string
}

function readRequest(review: unknown): Request | string {
  if (!isObject(review)) return 'the body is not a JSON object'
  if (review.kind !== 'AdmissionReview' || typeof review.apiVersion !== 'string' || !API_VERSIONS.has(review.apiVersion)) {
    return 'expected an AdmissionReview of apiVersion admission.k8s.io/v1 or admission.k8s.io/v1beta1'
  }
  const request = review.request
  if (!isObject(request)) return 'the AdmissionReview has no request'
  if (typeof request.uid !== 'string' || request.uid === '') return 'request.uid is missing'
  const kind = isObject(request.kind) ? request.kind : {}
  const object = request.object
  if (object !== undefined && object !== null && !isObject(object)) return 'request.object is not an object'
  const user = isObject(request.userInfo) && typeof request.userInfo.username === 'string' ? request.userInfo.username : undefined
  return {
    uid: request.uid,
    namespace: typeof request.namespace === 'string' ? request.namespace : '',
    operation: typeof request.operation === 'string' ? request.operation : '',
    dryRun: request.dryRun === true,
    kind: `${typeof kind.group === 'string' ? kind.group : ''}/${typeof kind.kind === 'string' ? kind.kind : ''}`,
    ...(isObject(object) ? { object } : {}),
    ...(user !== undefined ? { user } : {}),
  }
}

function baseAudit(req: Request, pod: JsonObject | undefined): AuditRecord {
  const spec = pod && isObject(pod.spec) ? pod.spec : {}
  const namespace = req.namespace || (pod && isObject(pod.metadata) && typeof pod.metadata.namespace === 'string' ? pod.metadata.namespace : '')
  return {
    uid: req.uid,
    namespace,
    pod: pod ? podLabel(pod) : '',
    serviceAccount: typeof spec.serviceAccountName === 'string' ? spec.serviceAccountName : 'default',
    ...(req.user !== undefined ? { user: req.user } : {}),
    operation: req.operation,
    dryRun: req.dryRun,
    decision: 'ignore',
    reason: '',
    warnings: 0,
  }
}

// Requests the webhook is not for are allowed unchanged, with the reason in
// the audit line: the MutatingWebhookConfiguration should not send them.
function ignored(review: JsonObject, req: Request, reason: string): AdmissionOutcome {
  const audit = baseAudit(req, req.object)
  audit.reason = reason
  return { statusCode: 200, body: respond(review, { uid: req.uid, allowed: true }), audit }
}

export function admit(body: unknown, deps: AdmissionDeps): AdmissionOutcome {
  const req = readRequest(body)
  if (typeof req === 'string') return badRequest(req)
  const review = body as JsonObject
  if (req.kind !== '/Pod') return ignored(review, req, `not a Pod (${req.kind.replace(/^\//, '')})`)
  if (req.operation !== 'CREATE') return ignored(review, req, `operation ${req.operation || '(none)'} is not mutated (only CREATE)`)
  if (!req.object) return badRequest('request.object is missing')
  if (depthExceeds(req.object, MAX_DEPTH)) return badRequest(`request.object nests deeper than ${MAX_DEPTH} levels`)
  try {
    return decide(review, req, req.object, deps)
  } catch (error) {
    return failed(review, req, error)
  }
}

// Judging threw: a bug, or input no check foresaw (a RangeError from input
// nested too deep). The pod asked for injection, so it is denied rather than
// admitted without its agent, and the audit line says so; never a 500.
function failed(review: JsonObject, req: Request, error: unknown): AdmissionOutcome {
  const audit = baseAudit(req, req.object)
  audit.decision = 'error'
  audit.reason = 'the review could not be judged'
  const status = { code: 400, message: 'vault-injector could not judge this pod (the injector logged why); check its annotations', reason: 'BadRequest' }
  return { statusCode: 200, body: respond(review, { uid: req.uid, allowed: false, status }), audit, error }
}

function decide(review: JsonObject, req: Request, pod: JsonObject, deps: AdmissionDeps): AdmissionOutcome {
  const audit = baseAudit(req, pod)
  const namespaceLabels = deps.namespaceLabels?.(audit.namespace)
  const j = judge({ pod, namespace: audit.namespace, namespaceLabels: namespaceLabels ?? {}, labelsUnknown: namespaceLabels === undefined, settings: deps.settings, policy: deps.policy })
  Object.assign(audit, j.audit)
  if (j.decision === 'deny') return deny(review, req, audit, j.reason, j.code ?? 400, j.warnings)
  const response: JsonObject = { uid: req.uid, allowed: true }
  if (j.patch.length > 0) {
    response.patchType = 'JSONPatch'
    response.patch = Buffer.from(JSON.stringify(j.patch)).toString('base64')
  }
  if (j.warnings.length > 0) response.warnings = j.warnings.map(cleanWarning)
  return { statusCode: 200, body: respond(review, response), audit }
}

function deny(review: JsonObject, req: Request, audit: AuditRecord, message: string, code: number, warnings: string[]): AdmissionOutcome {
  audit.decision = 'deny'
  audit.reason = redactValues(message)
  audit.warnings = warnings.length
  const response: JsonObject = {
    uid: req.uid,
    allowed: false,
    status: { code, message, reason: code === 403 ? 'Forbidden' : 'BadRequest' },
  }
  if (warnings.length > 0) response.warnings = warnings.map(cleanWarning)
  return { statusCode: 200, body: respond(review, response), audit }
}
