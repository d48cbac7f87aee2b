// What kube-proxy does for the e2e API server: a webhook registered by
// Service (clientConfig.service) is called at the Service's ClusterIP and
// port, which no machine routes here. kube-apiserver sends that traffic
// through its "cluster" egress selector; the harness points that at this
// HTTP CONNECT proxy on a Unix socket, which forwards each connection to a
// ready backend process of the Service on loopback, in turn. Any other
// target (a node's address, for logs and exec through a real kubelet) is
// dialled directly, as a cluster's network routes it.
import http from 'node:http'
import net from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

// The API server's --service-cluster-ip-range: ClusterIPs are handed out here.
export const SERVICE_CIDR = '10.96.0.0/24'
// A /24: the first three octets are the range.
const SERVICE_PREFIX = SERVICE_CIDR.replace(/\d+\/24$/, '')
const isServiceIp = (host: string): boolean => host.startsWith(SERVICE_PREFIX)

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
  // A Service's ClusterIP goes to its ready backends in turn; an address that
  // is not a Service goes where it says.
  const pick = (target: string): { host: string; port: number } | undefined => {
    const backends = routes.get(target)
    if (!backends) {
      const at = target.lastIndexOf(':')
      const host = target.slice(0, at).replace(/^\[|\]$/g, '')
      const port = Number(target.slice(at + 1))
      // A ClusterIP without backends is refused at once, as kube-proxy would.
      return at > 0 && Number.isInteger(port) && !isServiceIp(host) ? { host, port } : undefined
    }
    const ready = backends.filter((b) => b.ready())
    if (ready.length === 0) return undefined
    const turn = turns.get(target) ?? 0
    turns.set(target, turn + 1)
    return { host: '127.0.0.1', port: ready[turn % ready.length]!.port }
  }
  const server = http.createServer((_req, res) => res.writeHead(405).end())
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const target = req.url ?? ''
    dialled.push(target)
    const destination = pick(target)
    if (!destination) {
      client.end('HTTP/1.1 503 Service Unavailable\r\n\r\n')
      return
    }
    const upstream = net.connect(destination.port, destination.host, () => {
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
