// A small in-memory stand-in for the Kubernetes API: just the endpoints
// auto-TLS, leader election and register call (Leases, Secrets,
// MutatingWebhookConfigurations: get, create, replace, JSON Patch, list and
// watch by metadata.name), with resourceVersion conflicts and JSON Patch
// `test` ops as the API server has them. The real client-node talks to it over
// HTTP. The end-to-end suite runs the same code against a real kube-apiserver.
import { KubeConfig } from '@kubernetes/client-node'
import fastJsonPatch from 'fast-json-patch'
import http from 'node:http'

type Obj = Record<string, any>

export interface FakeApi {
  kubeConfig: KubeConfig
  objects: Map<string, Obj>
  requests: { method: string; path: string; query: string }[]
  // Make the next requests matching (method, path) fail with this HTTP status.
  failNext(method: string, path: string, code: number, times?: number): void
  // Change or delete an object as another client would (watchers are told).
  put(path: string, object: Obj): Obj
  remove(path: string): void
  // Called after every stored change, with the path changed.
  onChange(listener: (path: string) => void): void
  close(): Promise<void>
}

// A Lease's acquireTime and renewTime are MicroTime, which kube-apiserver
// parses with exactly six fractional digits: the three of Date#toISOString
// are refused with a 400, as here.
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(?:Z|[+-]\d{2}:\d{2})$/
function microTimeProblem(lease: Obj): string | undefined {
  for (const field of ['acquireTime', 'renewTime']) {
    const value = lease.spec?.[field]
    if (value !== undefined && value !== null && !(typeof value === 'string' && MICRO_TIME.test(value))) {
      return `parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05.000000Z07:00": not a MicroTime`
    }
  }
  return undefined
}

export async function startFakeApi(initial: Obj[] = []): Promise<FakeApi> {
  const objects = new Map<string, Obj>()
  const requests: FakeApi['requests'] = []
  let version = 1
  // Open watches: the collection path they watch, an optional name, and the stream.
  const watchers = new Set<{ collection: string; name?: string; res: http.ServerResponse }>()
  const changeListeners: ((path: string) => void)[] = []
  // Every change, so a watch that starts from a resourceVersion gets what came after it, as from the API server.
  const history: { version: number; collection: string; line: string; name: string }[] = []
  const notify = (type: 'ADDED' | 'MODIFIED' | 'DELETED', path: string, object: Obj): void => {
    for (const listener of changeListeners) listener(path)
    const collection = path.slice(0, path.lastIndexOf('/'))
    const line = JSON.stringify({ type, object }) + '\n'
    history.push({ version, collection, line, name: object.metadata?.name })
    for (const w of watchers) {
      if (w.collection === collection && (!w.name || w.name === object.metadata?.name)) w.res.write(line)
    }
  }
  const store = (path: string, object: Obj): Obj => {
    const existed = objects.has(path)
    const saved = { ...object, metadata: { ...object.metadata, resourceVersion: String(++version) } }
    objects.set(path, saved)
    notify(existed ? 'MODIFIED' : 'ADDED', path, saved)
    return saved
  }
  const failures: { method: string; path: string; code: number; times: number }[] = []
  for (const o of initial) store(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${o.metadata.name}`, o)

  const status = (res: http.ServerResponse, code: number, reason: string, message: string): void => {
    res.writeHead(code, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }))
  }
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const [path = '', query = ''] = (req.url ?? '').split('?')
      requests.push({ method: req.method ?? '', path, query })
      const failure = failures.find((f) => f.method === req.method && f.path === path && f.times > 0)
      if (failure) {
        failure.times--
        return status(res, failure.code, 'InternalError', 'injected failure')
      }
      const params = new URLSearchParams(query)
      const nameSelector = /^metadata\.name=(.+)$/.exec(params.get('fieldSelector') ?? '')?.[1]
      const send = (object: Obj, code = 200): void => {
        res.writeHead(code, { 'content-type': 'application/json' })
        res.end(JSON.stringify(object))
      }
      const parsed = body ? (JSON.parse(body) as Obj) : {}
      const existing = objects.get(path)
      const badTime = (req.method === 'POST' || req.method === 'PUT') && path.includes('/leases') ? microTimeProblem(parsed) : undefined
      if (badTime) return status(res, 400, 'BadRequest', `Lease in version "v1" cannot be handled as a Lease: ${badTime}`)
      switch (req.method) {
        case 'GET': {
          if (existing) return send(existing)
          const items = [...objects].filter(([p, o]) => p.startsWith(`${path}/`) && !p.slice(path.length + 1).includes('/') && (!nameSelector || o.metadata.name === nameSelector)).map(([, o]) => o)
          if (params.get('watch') === 'true') {
            res.writeHead(200, { 'content-type': 'application/json' })
            res.flushHeaders()
            const watcher = { collection: path, ...(nameSelector ? { name: nameSelector } : {}), res }
            const since = Number(params.get('resourceVersion') || version)
            for (const h of history) if (h.version > since && h.collection === path && (!nameSelector || h.name === nameSelector)) res.write(h.line)
            watchers.add(watcher)
            res.on('close', () => watchers.delete(watcher))
            return
          }
          if (nameSelector !== undefined || items.length > 0) return send({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: String(version) }, items })
          return status(res, 404, 'NotFound', `${path} not found`)
        }
        case 'POST': {
          const itemPath = `${path}/${parsed.metadata.name}`
          if (objects.has(itemPath)) return status(res, 409, 'AlreadyExists', `${itemPath} already exists`)
          return send(store(itemPath, parsed), 201)
        }
        case 'PUT':
          if (!existing) return status(res, 404, 'NotFound', `${path} not found`)
          if (parsed.metadata?.resourceVersion !== existing.metadata.resourceVersion) return status(res, 409, 'Conflict', 'the object has been modified')
          return send(store(path, parsed))
        case 'PATCH':
          if (!existing) return status(res, 404, 'NotFound', `${path} not found`)
          try {
            return send(store(path, fastJsonPatch.applyPatch(structuredClone(existing), parsed as fastJsonPatch.Operation[], true, false).newDocument))
          } catch (error) {
            // kube-apiserver answers a JSON Patch that does not apply (a failed test op) with 422.
            return status(res, 422, 'Invalid', `the patch does not apply: ${(error as Error).name}`)
          }
        default:
          return status(res, 405, 'MethodNotAllowed', String(req.method))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const kubeConfig = new KubeConfig()
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'fake', token: 'fake' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
    currentContext: 'fake',
  })
  return {
    kubeConfig,
    objects,
    requests,
    failNext: (method, path, code, times = 1) => void failures.push({ method, path, code, times }),
    put: store,
    onChange: (listener) => void changeListeners.push(listener),
    remove(path) {
      const object = objects.get(path)
      if (!object) return
      objects.delete(path)
      notify('DELETED', path, { ...object, metadata: { ...object.metadata, resourceVersion: String(++version) } })
    },
    close() {
      for (const w of watchers) w.res.end()
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
