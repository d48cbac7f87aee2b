// One Mount: the class's parameters, the policy's verdict, one Vault login with
// the pod's token, one read per distinct secret (path, method, arguments), the
// files and their versions. Versions are HMACs of the object's settings and
// contents under a key that never leaves the process: they change when the
// contents change and say nothing about them.
import { createHmac, randomBytes } from 'node:crypto'
import type { PolicyEvaluator, PolicyFinding } from '../policy/types.ts'
import { ContentError, contentOf } from './content.ts'
import { parseVaultJson } from './gojson.ts'
import { parseAttributes, ParamsError, vaultPathOf, type CsiObject, type CsiParams } from './params.ts'
import { mountPlan, tlsFor, type ProviderDefaults } from './plan.ts'
import { judgeMount, type CsiMountPlan } from './policy.ts'
import type { File, MountRequest, MountResponse, ObjectVersion } from './proto.ts'
import { VaultClient, VaultError, vaultAnswer, type VaultTarget, type VaultTls } from './vault.ts'

export type { ProviderDefaults }

export interface MountLogger {
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
}

export interface ProviderOptions {
  defaults: ProviderDefaults
  logger: MountLogger
  policy?: (() => PolicyEvaluator | undefined) | undefined
  // A namespace's labels, undefined while unknown; absent: every namespace's are unknown.
  namespaceLabels?: ((namespace: string) => Readonly<Record<string, string>> | undefined) | undefined
  // A token for the pod when the driver sent none (no tokenRequests on the CSIDriver).
  requestToken?: ((pod: CsiParams['pod'], audience: string) => Promise<string>) | undefined
  // The versions' HMAC key; random per process when not given.
  hmacKey?: Buffer | undefined
  // Reads in flight at once per mount.
  readConcurrency?: number
}

// Why a mount failed, with the gRPC status the driver sees.
export class MountError extends Error {
  readonly grpcCode: 'INVALID_ARGUMENT' | 'PERMISSION_DENIED' | 'UNKNOWN'
  constructor(message: string, grpcCode: MountError['grpcCode']) {
    super(message)
    this.grpcCode = grpcCode
  }
}

// The audit line: who mounted which secret paths with which role, and the
// verdict. The same fields as the webhook's admission line; never a value.
export interface MountAudit {
  namespace: string
  pod: string
  uid: string
  serviceAccount: string
  operation: 'Mount'
  injectionType: 'csi'
  role?: string
  authPath?: string
  vaultAddress?: string
  secretPaths?: string[]
  objects?: number
  decision: 'mount' | 'deny' | 'error'
  reason: string
  warnings: number
  policyFindings?: PolicyFinding[]
  // Vault round trips of this mount.
  logins: number
  reads: number
  changed?: string[]
}

export interface MountOutcome {
  response: MountResponse
  audit: MountAudit
}

function readKey(o: CsiObject): string {
  return JSON.stringify([o.secretPath, o.method.toUpperCase() || 'GET', o.secretArgs ?? null])
}

// "/v1/secret/data/app?version=2" → path and query, as HashiCorp's client sends it.
function requestPath(secretPath: string): string {
  const [path, query] = [secretPath.split('?')[0]!, secretPath.includes('?') ? secretPath.slice(secretPath.indexOf('?') + 1) : '']
  const v1 = path.startsWith('/v1/') ? path : path.startsWith('v1/') ? `/${path}` : path.startsWith('/') ? `/v1${path}` : `/v1/${path}`
  const search = query ? new URLSearchParams(query).toString() : ''
  return search ? `${v1}?${search}` : v1
}

async function inBatches<T>(items: T[], size: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await run(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker))
}

export class CsiProvider {
  #options: ProviderOptions
  #hmacKey: Buffer
  #clients = new Map<string, VaultClient>()
  #totals = { mounts: 0, logins: 0, reads: 0 }

  constructor(options: ProviderOptions) {
    this.#options = options
    this.#hmacKey = options.hmacKey ?? randomBytes(32)
  }

  #client(target: VaultTarget): VaultClient {
    const key = JSON.stringify(target)
    let client = this.#clients.get(key)
    if (!client) {
      // A bounded set: classes name few Vault servers.
      if (this.#clients.size >= 64) {
        const [oldestKey, oldest] = this.#clients.entries().next().value!
        oldest.close()
        this.#clients.delete(oldestKey)
      }
      client = new VaultClient(target)
      this.#clients.set(key, client)
    }
    return client
  }

  version(object: CsiObject, contents: Buffer): string {
    const settings = JSON.stringify([object.objectName, object.secretPath, object.secretKey, object.method, object.secretArgs ?? null, object.encoding])
    return createHmac('sha256', this.#hmacKey).update(settings).update('\0').update(contents).digest('base64url')
  }

  tlsFor(params: CsiParams): VaultTls {
    return tlsFor(params, this.#options.defaults)
  }

  plan(params: CsiParams): CsiMountPlan {
    return mountPlan(params, this.#options.defaults)
  }

  // Totals since start: mounts, Vault logins and reads (the benchmark's figures).
  stats(): { mounts: number; logins: number; reads: number } {
    return { ...this.#totals }
  }

  async mount(request: MountRequest): Promise<MountOutcome> {
    const audit: MountAudit = { namespace: '', pod: '', uid: '', serviceAccount: '', operation: 'Mount', injectionType: 'csi', decision: 'error', reason: '', warnings: 0, logins: 0, reads: 0 }
    try {
      return await this.#mount(request, audit)
    } catch (error) {
      this.#count(audit)
      if (error instanceof MountError) {
        audit.reason = error.message
        if (error.grpcCode === 'PERMISSION_DENIED') audit.decision = 'deny'
      } else audit.reason = (error as Error).message
      this.#options.logger.warn(audit, 'csi mount')
      throw error instanceof MountError ? error : new MountError((error as Error).message, 'UNKNOWN')
    }
  }

  async #mount(request: MountRequest, audit: MountAudit): Promise<MountOutcome> {
    let params: CsiParams
    try {
      params = parseAttributes(request.attributes, request.targetPath, request.permission)
    } catch (error) {
      if (error instanceof ParamsError) throw new MountError(`SecretProviderClass: ${error.message}`, 'INVALID_ARGUMENT')
      throw error
    }
    Object.assign(audit, { namespace: params.pod.namespace, pod: params.pod.name, uid: params.pod.uid, serviceAccount: params.pod.serviceAccountName })
    const plan = this.plan(params)
    Object.assign(audit, { role: plan.roleName, authPath: plan.authPath, vaultAddress: plan.vaultAddress, secretPaths: [...new Set(plan.objects.map((o) => vaultPathOf(o.secretPath)))], objects: plan.objects.length })

    const policy = this.#options.policy?.()
    if (policy) {
      const labels = this.#options.namespaceLabels?.(plan.namespace)
      const verdict = judgeMount(policy, plan, labels)
      audit.policyFindings = verdict.findings
      audit.warnings = verdict.warnings.length
      if (verdict.denied !== undefined) throw new MountError(`denied by the vault-injector policy: ${verdict.denied}`, 'PERMISSION_DENIED')
    }

    let jwt = params.serviceAccountToken
    if (!jwt) {
      if (!this.#options.requestToken) {
        throw new MountError(`no service-account token for audience "${params.audience || 'vault'}" in the mount request: add {audience: "${params.audience || 'vault'}"} to the tokenRequests of the CSIDriver secrets-store.csi.k8s.io, or run the provider with access to the Kubernetes API`, 'INVALID_ARGUMENT')
      }
      jwt = await this.#options.requestToken(params.pod, params.audience)
    }

    const tls = this.tlsFor(params)
    const client = this.#client({ address: plan.vaultAddress, namespace: plan.vaultNamespace, tls })
    const mountPath = plan.authPath.slice('auth/'.length)
    let token: string
    try {
      audit.logins++
      token = await client.login(mountPath, plan.roleName, jwt)
    } catch (error) {
      throw new MountError(error instanceof VaultError ? error.message : `Vault login failed: ${(error as Error).message}`, 'UNKNOWN')
    }

    // One read per distinct (path, method, arguments); objects that share one share its answer.
    const answers = new Map<string, Record<string, unknown>>()
    const distinct = [...new Map(params.objects.map((o) => [readKey(o), o])).values()]
    await inBatches(distinct, this.#options.readConcurrency ?? 8, async (o) => {
      const method = o.method.toUpperCase() || 'GET'
      const path = requestPath(o.secretPath)
      audit.reads++
      const response = await client.request(method, path, token, o.secretArgs).catch((error: Error) => {
        throw new MountError(`object "${o.objectName}": ${error.message}`, 'UNKNOWN')
      })
      if (response.status < 200 || response.status >= 300) throw new MountError(`object "${o.objectName}": Vault answered ${vaultAnswer(response)} for ${method} ${path.split('?')[0]}`, 'UNKNOWN')
      let body: unknown
      try {
        body = response.body === '' ? null : parseVaultJson(response.body)
      } catch {
        throw new MountError(`object "${o.objectName}": Vault's answer for ${method} ${path.split('?')[0]} is not JSON`, 'UNKNOWN')
      }
      const data = (body as { data?: unknown } | null)?.data
      if (typeof data !== 'object' || data === null) throw new MountError(`object "${o.objectName}": empty response from ${path.split('?')[0]}`, 'UNKNOWN')
      answers.set(readKey(o), body as Record<string, unknown>)
    })

    const files: File[] = []
    const objectVersion: ObjectVersion[] = []
    const previous = new Map(request.currentObjectVersion.map((v) => [v.id, v.version]))
    const changed: string[] = []
    for (const o of params.objects) {
      let contents: Buffer
      try {
        contents = contentOf(o, answers.get(readKey(o))!)
      } catch (error) {
        if (error instanceof ContentError) throw new MountError(error.message, 'UNKNOWN')
        throw error
      }
      // A whole response carries Vault's request_id, new on every read: it is left out of the
      // version, so the version moves when the secret does, not on every mount.
      const version = this.version(o, o.secretKey === '' ? contentOf(o, { ...answers.get(readKey(o))!, request_id: '' }) : contents)
      if (previous.size > 0 && previous.get(o.objectName) !== version) changed.push(o.objectName)
      files.push({ path: o.objectName, mode: o.filePermission || params.permission, contents })
      objectVersion.push({ id: o.objectName, version })
    }
    audit.decision = 'mount'
    audit.reason = `${files.length} file(s) for ${params.targetPath}`
    if (previous.size > 0) audit.changed = changed
    this.#count(audit)
    this.#options.logger.info(audit, 'csi mount')
    return { response: { objectVersion, files }, audit }
  }

  #count(audit: MountAudit): void {
    this.#totals.mounts++
    this.#totals.logins += audit.logins
    this.#totals.reads += audit.reads
  }

  close(): void {
    for (const client of this.#clients.values()) client.close()
    this.#clients.clear()
  }
}
