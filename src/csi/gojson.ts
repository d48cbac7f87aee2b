// JSON as Go's encoding/json writes it, so a file holding a whole Vault
// response (no secretKey) or a non-string value has the same bytes as with
// HashiCorp's provider: map keys sorted, <, > and & escaped, numbers exactly
// as Vault sent them.

// A JSON number kept as its source text (Go decodes Vault's answers with UseNumber).
export class GoNumber {
  readonly text: string
  constructor(text: string) {
    this.text = text
  }
}

// JSON.parse, numbers kept as written.
export function parseVaultJson(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) => (typeof value === 'number' && context?.source !== undefined ? new GoNumber(context.source) : value))
}

const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f', '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' }

export function goString(s: string): string {
  // eslint-disable-next-line no-control-regex
  return `"${s.replace(/[\u0000-\u001f"\\<>&\u2028\u2029]/g, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`
}

// Go sorts map keys by their UTF-8 bytes.
const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))

export function goJson(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (value instanceof GoNumber) return value.text
  if (typeof value === 'string') return goString(value)
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null'
  if (Array.isArray(value)) return `[${value.map(goJson).join(',')}]`
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => byUtf8(a, b))
    return `{${entries.map(([k, v]) => `${goString(k)}:${goJson(v)}`).join(',')}}`
  }
  return 'null'
}

// A Vault API response as Go's api.Secret marshals it: its fields in struct order.
export function goSecretJson(response: Record<string, unknown>): string {
  const num = (v: unknown): string => (v instanceof GoNumber ? v.text : typeof v === 'number' ? String(v) : '0')
  const str = (v: unknown): string => goString(typeof v === 'string' ? v : '')
  const parts = [
    `"request_id":${str(response.request_id)}`,
    `"lease_id":${str(response.lease_id)}`,
    `"lease_duration":${num(response.lease_duration)}`,
    `"renewable":${response.renewable === true ? 'true' : 'false'}`,
    `"data":${goJson(response.data ?? null)}`,
    `"warnings":${goJson(response.warnings ?? null)}`,
  ]
  if (response.auth !== null && response.auth !== undefined) parts.push(`"auth":${goJson(response.auth)}`)
  if (response.wrap_info !== null && response.wrap_info !== undefined) parts.push(`"wrap_info":${goJson(response.wrap_info)}`)
  if (typeof response.mount_type === 'string' && response.mount_type !== '') parts.push(`"mount_type":${goString(response.mount_type)}`)
  return `{${parts.join(',')}}`
}
