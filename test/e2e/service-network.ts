// What kube-proxy does for the e2e API server: a webhook registered by
// Service (clientConfig.service) is called at the Service's ClusterIP and
// port, which no machine routes here. kube-apiserver sends that traffic
// through its "cluster" egress selector; the harness points that at this
// HTTP CONNECT proxy on a Unix socket, which forwards each connection to a
// ready backend process of the Service on loopback, in turn.
import http from 'node:http'
import net from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface Backend {
  port: number
  ready(): boolean
}

export interface ServiceNetwork {
  // The kube-apiserver flag that sends Service traffic through this proxy.
  apiserverFlag: string
  // Connections to ip:port go to one of the ready backends.
  route(ip: string, port: number, backends: Backend[]): void
  // Every CONNECT target seen, in order (what the API server dialled).
  dialled: string[]
  close(): Promise<void>
}

export async function startServiceNetwork(dir: string): Promise<ServiceNetwork> {
  const socketPath = join(dir, 'egress.sock')
  const routes = new Map<string, Backend[]>()
  const turns = new Map<string, number>()
  const dialled: string[] = []
  const open = new Set<net.Socket>()
  const server = http.createServer((_req, res) => res.writeHead(405).end())
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const target = req.url ?? ''
    dialled.push(target)
    const ready = (routes.get(target) ?? []).filter((b) => b.ready())
    if (ready.length === 0) {
      client.end('HTTP/1.1 503 Service Unavailable\r\n\r\n')
      return
    }
    const turn = turns.get(target) ?? 0
    turns.set(target, turn + 1)
    const backend = ready[turn % ready.length]!
    const upstream = net.connect(backend.port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length > 0) upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    for (const socket of [client, upstream]) {
      open.add(socket)
      socket.on('close', () => open.delete(socket))
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, resolve)
  })
  const configFile = join(dir, 'egress-selector.yaml')
  writeFileSync(
    configFile,
    [
      'apiVersion: apiserver.k8s.io/v1beta1',
      'kind: EgressSelectorConfiguration',
      'egressSelections:',
      // Only "cluster": webhooks registered with a URL use "controlplane" and stay direct.
      '  - name: cluster',
      '    connection:',
      '      proxyProtocol: HTTPConnect',
      '      transport:',
      `        uds: {udsName: ${JSON.stringify(socketPath)}}`,
      '',
    ].join('\n'),
  )
  return {
    apiserverFlag: `--egress-selector-config-file=${configFile}`,
    route(ip, port, backends) {
      routes.set(`${ip}:${port}`, backends)
    },
    dialled,
    close: () =>
      new Promise((resolve) => {
        for (const socket of open) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
