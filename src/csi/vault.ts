// The provider's few Vault calls: one Kubernetes-auth login per mount, then
// reads with the token it returns. node:http(s) directly, so each class's TLS
// settings (CA file or folder, client certificate, server name) apply to its
// own connections only.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { join } from 'node:path'

export interface VaultTls {
  caCertPath: string
  caDirectory: string
  serverName: string
  clientCertPath: string
  clientKeyPath: string
  skipVerify: boolean
}

export interface VaultTarget {
  address: string
  namespace: string
  tls: VaultTls
}

export interface VaultResponse {
  status: number
  body: string
}

// A Vault error, with Vault's own words (its "errors" list), never a request body.
export class VaultError extends Error {
  readonly status: number
  constructor(message: string, status: number) {
    super(message)
    this.status = status
  }
}

const MAX_RESPONSE_BYTES = 16 * 1024 * 1024

function caBundle(tls: VaultTls): string[] | undefined {
  const pems: string[] = []
  if (tls.caCertPath) pems.push(readFileSync(tls.caCertPath, 'utf8'))
  if (tls.caDirectory) {
    for (const name of readdirSync(tls.caDirectory).sort()) {
      const path = join(tls.caDirectory, name)
      if (statSync(path).isFile()) pems.push(readFileSync(path, 'utf8'))
    }
  }
  return pems.length > 0 ? pems : undefined
}

// Vault's answer in a line: "403 permission denied".
export function vaultAnswer(response: VaultResponse): string {
  try {
    const errors = (JSON.parse(response.body) as { errors?: unknown }).errors
    if (Array.isArray(errors) && errors.length > 0) return `${response.status} ${errors.map(String).join('; ').slice(0, 500)}`
  } catch {
    // not JSON: the status alone
  }
  return String(response.status)
}

export class VaultClient {
  #url: URL
  #namespace: string
  #agentOptions: https.AgentOptions
  #agent: http.Agent
  requests = 0

  constructor(target: VaultTarget) {
    let url: URL
    try {
      url = new URL(target.address)
    } catch {
      throw new VaultError(`Vault address "${target.address}" is not a URL`, 0)
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new VaultError(`Vault address "${target.address}" is not http(s)`, 0)
    this.#url = url
    this.#namespace = target.namespace
    const ca = url.protocol === 'https:' ? caBundle(target.tls) : undefined
    this.#agentOptions = {
      keepAlive: true,
      ...(ca ? { ca } : {}),
      ...(target.tls.serverName ? { servername: target.tls.serverName } : {}),
      ...(target.tls.clientCertPath ? { cert: readFileSync(target.tls.clientCertPath) } : {}),
      ...(target.tls.clientKeyPath ? { key: readFileSync(target.tls.clientKeyPath) } : {}),
      rejectUnauthorized: !target.tls.skipVerify,
    }
    this.#agent = url.protocol === 'https:' ? new https.Agent(this.#agentOptions) : new http.Agent({ keepAlive: true })
  }

  // method and a path under /v1/ (query included), with an optional JSON body.
  request(method: string, path: string, token: string, body?: unknown): Promise<VaultResponse> {
    this.requests++
    const base = this.#url.pathname.replace(/\/+$/, '')
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    const headers: Record<string, string> = { accept: 'application/json' }
    if (token) headers['x-vault-token'] = token
    if (this.#namespace) headers['x-vault-namespace'] = this.#namespace
    if (payload) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = String(payload.length)
    }
    const transport = this.#url.protocol === 'https:' ? https : http
    return new Promise((resolve, reject) => {
      const req = transport.request(
        { protocol: this.#url.protocol, hostname: this.#url.hostname, port: this.#url.port, method, path: `${base}${path}`, headers, agent: this.#agent, timeout: 30_000 },
        (res) => {
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (chunk: Buffer) => {
            size += chunk.length
            if (size > MAX_RESPONSE_BYTES) req.destroy(new VaultError(`Vault's answer to ${method} ${path.split('?')[0]} is larger than ${MAX_RESPONSE_BYTES} bytes`, 0))
            else chunks.push(chunk)
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
          res.on('error', reject)
        },
      )
      req.on('timeout', () => req.destroy(new VaultError(`no answer from Vault at ${this.#url.origin} within 30 s`, 0)))
      req.on('error', (error) => reject(error instanceof VaultError ? error : new VaultError(`cannot reach Vault at ${this.#url.origin}: ${(error as NodeJS.ErrnoException).code ?? error.message}`, 0)))
      req.end(payload)
    })
  }

  // POST auth/<mount>/login with the pod's token; returns the client token.
  async login(mountPath: string, role: string, jwt: string): Promise<string> {
    const path = `/v1/auth/${mountPath.replace(/^\/+|\/+$/g, '')}/login`
    const response = await this.request('POST', path, '', { jwt, role }).catch((error: Error) => {
      throw new VaultError(`Vault login at ${path} with role "${role}" failed: ${error.message}`, 0)
    })
    if (response.status !== 200) throw new VaultError(`Vault login at ${path} with role "${role}" failed: ${vaultAnswer(response)}`, response.status)
    const token = (JSON.parse(response.body) as { auth?: { client_token?: unknown } }).auth?.client_token
    if (typeof token !== 'string' || token === '') throw new VaultError(`Vault login at ${path} returned no client token`, response.status)
    return token
  }

  close(): void {
    this.#agent.destroy()
  }
}
