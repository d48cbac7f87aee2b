// A small in-memory stand-in for the Kubernetes API: just the endpoints
// auto-TLS and leader election call (Leases, Secrets, one
// MutatingWebhookConfiguration), with resourceVersion conflicts and JSON Patch
// `test` ops as the API server has them. The real client-node talks to it over
// HTTP. The end-to-end suite runs the same code against a real kube-apiserver.
import { KubeConfig } from '@kubernetes/client-node'
import fastJsonPatch from 'fast-json-patch'
import http from 'node:http'

type Obj = Record<string, any>

export interface FakeApi {
  kubeConfig: KubeConfig
  objects: Map<string, Obj>
  requests: { method: string; path: string }[]
  close(): Promise<void>
}

export async function startFakeApi(initial: Obj[] = []): Promise<FakeApi> {
  const objects = new Map<string, Obj>()
  const requests: FakeApi['requests'] = []
  let version = 1
  const store = (path: string, object: Obj): Obj => {
    const saved = { ...object, metadata: { ...object.metadata, resourceVersion: String(++version) } }
    objects.set(path, saved)
    return saved
  }
  for (const o of initial) store(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${o.metadata.name}`, o)

  const status = (res: http.ServerResponse, code: number, reason: string, message: string): void => {
    res.writeHead(code, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }))
  }
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0]!
      requests.push({ method: req.method ?? '', path })
      const send = (object: Obj, code = 200): void => {
        res.writeHead(code, { 'content-type': 'application/json' })
        res.end(JSON.stringify(object))
      }
      const parsed = body ? (JSON.parse(body) as Obj) : {}
      const existing = objects.get(path)
      switch (req.method) {
        case 'GET':
          return existing ? send(existing) : status(res, 404, 'NotFound', `${path} not found`)
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
          } catch {
            return status(res, 409, 'Conflict', 'the patch test failed')
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
  return { kubeConfig, objects, requests, close: () => new Promise((resolve) => server.close(() => resolve())) }
}
