// A real vault-injector server over real HTTPS on 127.0.0.1, for tests.
import { mkdtempSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { loadSettings, type Settings } from '../../src/settings.ts'
import { generateCA, generateServingCert, type CertificateAuthority } from '../../src/tls/ca.ts'
import { FileCertSource } from '../../src/tls/files.ts'
import { createLogger } from '../../src/log.ts'
import { buildServer, type ServerOptions, type WebhookServer } from '../../src/webhook/server.ts'

export interface TestServer {
  server: WebhookServer
  url: string
  port: number
  ca: CertificateAuthority
  dir: string
  logs: Record<string, any>[]
  // Write a new serving certificate (same CA) to the files the server polls.
  rotate(): string
  request(path: string, options?: RequestOptions): Promise<Response>
}

export interface RequestOptions {
  method?: string
  body?: string | Buffer
  contentType?: string | null
  agent?: https.Agent
}

export interface Response {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json(): any
  serial?: string
}

export function writeLeaf(ca: CertificateAuthority, dir: string): string {
  const leaf = generateServingCert({ ca, hosts: ['localhost', '127.0.0.1'], validityMs: 3_600_000 })
  // Key first, then certificate: a poll between the two sees a mismatch and keeps the old pair.
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem)
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem)
  return leaf.certPem
}

export function httpsRequest(url: string, ca: string, options: RequestOptions = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {}
    if (options.contentType !== null && options.body !== undefined) headers['content-type'] = options.contentType ?? 'application/json'
    if (options.body !== undefined) headers['content-length'] = Buffer.byteLength(options.body)
    const req = https.request(url, { method: options.method ?? (options.body !== undefined ? 'POST' : 'GET'), ca, headers, ...(options.agent ? { agent: options.agent } : {}) }, (res) => {
      const chunks: Buffer[] = []
      const peer = (res.socket as import('node:tls').TLSSocket | null)?.getPeerCertificate?.()
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text), ...(peer?.serialNumber ? { serial: peer.serialNumber } : {}) })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    if (options.body !== undefined) req.write(options.body)
    req.end()
  })
}

export async function startServer(env: Record<string, string> = {}, extra: Partial<ServerOptions> = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-test-'))
  const ca = generateCA({ commonName: 'test CA', validityMs: 3_600_000 })
  writeLeaf(ca, dir)
  const logs: Record<string, any>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line))
      done()
    },
  })
  const settings: Settings = loadSettings({ AGENT_INJECT_LISTEN: '127.0.0.1:0', ...env }, {})
  const logger = createLogger(settings, stream)
  const certSource = new FileCertSource({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), logger, pollIntervalMs: 20 })
  const server = await buildServer({ settings, certSource, logger, ...extra })
  await server.listen()
  const address = server.app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const url = `https://127.0.0.1:${port}`
  return {
    server,
    url,
    port,
    ca,
    dir,
    logs,
    rotate: () => writeLeaf(ca, dir),
    request: (path, options) => httpsRequest(url + path, ca.certPem, options),
  }
}
