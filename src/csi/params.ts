// The MountRequest's attributes read the way HashiCorp's vault-csi-provider
// reads them (internal/config/config.go), so a SecretProviderClass written for
// it works unchanged: the same parameter names, defaults and checks.
import { isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml'
import type { VaultTls } from './vault.ts'

export class ParamsError extends Error {}

export interface CsiObject {
  objectName: string
  secretPath: string
  secretKey: string
  method: string
  secretArgs?: Record<string, unknown>
  // 0 when not set: the request's permission applies.
  filePermission: number
  encoding: string
}

export interface PodInfo {
  name: string
  uid: string
  namespace: string
  serviceAccountName: string
}

export interface CsiParams {
  roleName: string
  // '' when the class names none: the provider's --vault-addr applies.
  vaultAddress: string
  vaultNamespace: string
  // '' when the class names none: the provider's --vault-mount applies.
  authMountPath: string
  audience: string
  // The class's own TLS settings (the provider's fill the gaps: plan.ts).
  tls: VaultTls
  objects: CsiObject[]
  pod: PodInfo
  // The pod's token for the audience, from csi.storage.k8s.io/serviceAccount.tokens; '' if the driver sent none.
  serviceAccountToken: string
  targetPath: string
  // The driver's default file mode for the files.
  permission: number
}

// Go's strconv.ParseBool.
function parseBool(name: string, value: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false
  throw new ParamsError(`${name}: "${value}" is not a boolean (true or false)`)
}

// An integer as YAML 1.1 and Go write it: 0600 and 0o600 are octal, 0x180 hex, 384 decimal.
function parseMode(objectName: string, text: string): number {
  const t = text.trim()
  let mode: number
  if (/^0[oO]?[0-7]+$/.test(t)) mode = parseInt(t.replace(/^0[oO]?/, ''), 8)
  else if (/^0[xX][0-9a-fA-F]+$/.test(t)) mode = parseInt(t.slice(2), 16)
  else if (/^(0|[1-9][0-9]*)$/.test(t)) mode = parseInt(t, 10)
  else throw new ParamsError(`object "${objectName}": filePermission "${text}" is not a file mode (write it as 0600 or 384)`)
  if (mode > 0o777) throw new ParamsError(`object "${objectName}": filePermission ${t} is more than 0777`)
  return mode
}

// What Go's YAML decoder puts in a string field: the scalar's text as written.
function scalarText(node: unknown): string {
  if (!isScalar(node) || node.value === null) return ''
  if (typeof node.value === 'string') return node.value
  return typeof node.source === 'string' ? node.source : String(node.value)
}

const OBJECT_KEYS = new Set(['objectName', 'secretPath', 'secretKey', 'method', 'secretArgs', 'filePermission', 'encoding'])

export function parseObjects(yamlText: string): CsiObject[] {
  const doc = parseDocument(yamlText, { uniqueKeys: false })
  if (doc.errors.length > 0) throw new ParamsError(`objects: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`)
  const root = doc.contents as Node | null
  if (root === null || (isScalar(root) && root.value === null)) return []
  if (!isSeq(root)) throw new ParamsError('objects: must be a YAML list of objects (objectName, secretPath, secretKey...)')
  return root.items.map((item, index) => {
    if (!isMap(item)) throw new ParamsError(`objects[${index}]: must be a mapping with objectName and secretPath`)
    const object: CsiObject = { objectName: '', secretPath: '', secretKey: '', method: '', filePermission: 0, encoding: '' }
    for (const pair of item.items) {
      const key = scalarText(pair.key)
      if (!OBJECT_KEYS.has(key)) continue // Go's decoder ignores unknown fields too.
      if (key === 'secretArgs') {
        const args = (pair.value as Node | null)?.toJSON?.() as unknown
        if (args !== null && args !== undefined) {
          if (typeof args !== 'object' || Array.isArray(args)) throw new ParamsError(`objects[${index}]: secretArgs must be a mapping`)
          object.secretArgs = args as Record<string, unknown>
        }
      } else if (key === 'filePermission') {
        const text = scalarText(pair.value)
        if (text !== '') object.filePermission = parseMode(object.objectName || `objects[${index}]`, isScalar(pair.value) && typeof pair.value.source === 'string' ? pair.value.source : text)
      } else {
        if (pair.value !== null && !isScalar(pair.value)) throw new ParamsError(`objects[${index}]: ${key} must be a string`)
        object[key as 'objectName' | 'secretPath' | 'secretKey' | 'method' | 'encoding'] = scalarText(pair.value)
      }
    }
    return object
  })
}

// "../x", "/x" and names the driver's atomic writer refuses fail here with the object named.
function checkObjectName(name: string): void {
  if (name === '') throw new ParamsError('an object has no objectName')
  const segments = name.replaceAll('\\', '/').split('/')
  if (name.startsWith('/') || segments.includes('..') || name.startsWith('..') || segments.some((s) => s === '' || s === '.')) {
    throw new ParamsError(`objectName "${name}" must be a relative path without "." or ".." segments`)
  }
}

export function parseAttributes(attributes: string, targetPath: string, permission: string): CsiParams {
  let raw: unknown
  try {
    raw = JSON.parse(attributes)
  } catch {
    throw new ParamsError('attributes: not a JSON object')
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ParamsError('attributes: not a JSON object')
  const params = raw as Record<string, unknown>
  for (const [key, value] of Object.entries(params)) if (typeof value !== 'string') throw new ParamsError(`parameter ${key}: must be a string`)
  const get = (key: string): string => (Object.hasOwn(params, key) ? (params[key] as string) : '')

  const k8sSet = Object.hasOwn(params, 'vaultKubernetesMountPath')
  const authSet = Object.hasOwn(params, 'vaultAuthMountPath')
  if (k8sSet && authSet) throw new ParamsError('cannot set both vaultKubernetesMountPath and vaultAuthMountPath')
  const audience = get('audience')

  let serviceAccountToken = ''
  const tokensJson = get('csi.storage.k8s.io/serviceAccount.tokens')
  if (tokensJson !== '') {
    let tokens: unknown
    try {
      tokens = JSON.parse(tokensJson)
    } catch {
      throw new ParamsError('csi.storage.k8s.io/serviceAccount.tokens: not JSON')
    }
    const entry = (tokens as Record<string, { token?: unknown } | undefined> | null)?.[audience || 'vault']
    if (entry && typeof entry.token === 'string') serviceAccountToken = entry.token
  }

  let mode: unknown
  try {
    mode = JSON.parse(permission)
  } catch {
    throw new ParamsError(`permission "${permission}" is not a JSON number`)
  }
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0) throw new ParamsError(`permission "${permission}" is not a file mode`)

  const result: CsiParams = {
    roleName: get('roleName'),
    vaultAddress: get('vaultAddress'),
    vaultNamespace: get('vaultNamespace'),
    authMountPath: k8sSet ? get('vaultKubernetesMountPath') : get('vaultAuthMountPath'),
    audience,
    tls: {
      caCertPath: get('vaultCACertPath'),
      caDirectory: get('vaultCADirectory'),
      serverName: get('vaultTLSServerName'),
      clientCertPath: get('vaultTLSClientCertPath'),
      clientKeyPath: get('vaultTLSClientKeyPath'),
      skipVerify: Object.hasOwn(params, 'vaultSkipTLSVerify') ? parseBool('vaultSkipTLSVerify', get('vaultSkipTLSVerify')) : false,
    },
    objects: parseObjects(get('objects')),
    pod: {
      name: get('csi.storage.k8s.io/pod.name'),
      uid: get('csi.storage.k8s.io/pod.uid'),
      namespace: get('csi.storage.k8s.io/pod.namespace'),
      serviceAccountName: get('csi.storage.k8s.io/serviceAccount.name'),
    },
    serviceAccountToken,
    targetPath,
    permission: mode,
  }
  if (targetPath === '') throw new ParamsError('missing target path field')
  if (result.roleName === '') throw new ParamsError("missing 'roleName' in SecretProviderClass definition")
  if (result.objects.length === 0) throw new ParamsError('no secrets configured - the provider will not read any secret material')
  const seen = new Set<string>()
  const duplicated: string[] = []
  for (const o of result.objects) {
    checkObjectName(o.objectName)
    if (seen.has(o.objectName)) duplicated.push(o.objectName)
    seen.add(o.objectName)
    if (o.secretPath === '') throw new ParamsError(`object "${o.objectName}": no secretPath`)
    if (o.encoding !== '' && !['utf-8', 'base64', 'hex'].includes(o.encoding.toLowerCase())) throw new ParamsError(`object "${o.objectName}": encoding "${o.encoding}" is not utf-8, base64 or hex`)
  }
  if (duplicated.length > 0) throw new ParamsError(`each \`objectName\` within a SecretProviderClass must be unique, but the following keys were duplicated: ${duplicated.join(', ')}`)
  return result
}

// The secret path as Vault's API sees it: "secret/data/app" for "/v1/secret/data/app?version=2".
export function vaultPathOf(secretPath: string): string {
  const noQuery = secretPath.split('?')[0]!
  return noQuery.replace(/^\/?(v1\/)?/, '').replace(/^\/+/, '')
}
