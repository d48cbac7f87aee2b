// Value parsers for annotations. Each returns the parsed value, or undefined
// when the text is not accepted; `accepts` says what is, for the denial message.
export interface ValueType<T> {
  parse(raw: string): T | undefined
  // Completes `<annotation>: "<value>" <accepts>`.
  accepts: string
  // What an unset annotation without a default reads as (text: "", lists: []);
  // without it, undefined.
  unset?: T
}

// A text value (quantity, duration, name, path...): unset reads as "".
export type TextType = ValueType<string> & { unset: string }
export function textType(parse: (raw: string) => boolean, accepts: string): TextType {
  return { parse: (raw) => (parse(raw) ? raw : undefined), accepts, unset: '' }
}

const BOOL_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True'])
const BOOL_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False'])

// Go's strconv.ParseBool, which vault-k8s uses everywhere.
export function parseGoBool(value: string): boolean | undefined {
  if (BOOL_TRUE.has(value)) return true
  if (BOOL_FALSE.has(value)) return false
  return undefined
}

export const boolType: ValueType<boolean> = {
  parse: parseGoBool,
  accepts: 'is not a boolean (true or false)',
}

export const stringType = {
  parse: (raw: string): string => raw,
  accepts: '',
  unset: '',
} satisfies ValueType<string>

// Kubernetes resource.Quantity, e.g. 500m, 1, 1.5Gi, 1e3. "" is allowed by the
// callers that treat it as "omit the field".
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$/
export const quantityType = textType((raw) => QUANTITY.test(raw), 'is not a Kubernetes quantity (e.g. 500m, 1)')

// Go time.ParseDuration.
const DURATION = /^[+-]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$/
export const durationType = textType((raw) => raw === '0' || DURATION.test(raw), 'is not a duration (e.g. 1s, 500ms, 2m)')

// Vault accepts either a Go duration or a number of seconds here.
export const durationOrSecondsType = textType((raw) => /^\d+$/.test(raw) || durationType.parse(raw) !== undefined, 'is not a duration (e.g. 30s, 5m) or a number of seconds')

export function integerType(min: number, max: number, accepts: string): ValueType<number> {
  return {
    parse(raw) {
      if (!/^[+-]?\d+$/.test(raw)) return undefined
      const n = Number(raw)
      return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined
    },
    accepts,
  }
}

export const uidType = integerType(0, 2 ** 31 - 1, 'is not a user or group ID (an integer from 0)')
export const nonNegativeIntType = integerType(0, 2 ** 31 - 1, 'is not a whole number from 0')
export const portType = integerType(1, 65535, 'is not a port number (1-65535)')
export const tokenSecondsType = integerType(600, 2 ** 31 - 1, 'is not a token lifetime in seconds (600 or more)')

// A container image reference: one word, no spaces.
export const imageType = textType((raw) => /^\S+$/.test(raw), 'is not a container image (e.g. hashicorp/vault:1.21.0)')

// Text that must not be empty (a name, a mount path).
export const nonEmptyType = textType((raw) => raw.trim() !== '', 'is empty')

export const fractionType: ValueType<number> = {
  parse(raw) {
    if (!/^(\d+(\.\d*)?|\.\d+)$/.test(raw)) return undefined
    const n = Number(raw)
    return n >= 0 && n <= 1 ? n : undefined
  },
  accepts: 'is not a fraction between 0 and 1 (e.g. 0.9)',
}

export function enumType(values: readonly string[]): TextType {
  return textType((raw) => values.includes(raw), `is not accepted (${values.join(', ')})`)
}

// The Vault Agent reads log levels and formats in any case (it lowercases
// them); the value is kept as written.
export function caseInsensitiveEnumType(values: readonly string[]): TextType {
  return textType((raw) => values.includes(raw.trim().toLowerCase()), `is not accepted (${values.join(', ')}; any case)`)
}

// The default secret templates (secrets.ts).
export const templateKindType = enumType(['map', 'json'])

// File mode in octal, as Vault's template `perms` takes it.
export const permsType = textType((raw) => /^0?[0-7]{3}$/.test(raw), 'is not an octal file mode (e.g. 0400, 0644)')

// DNS-1123 subdomain: names of ConfigMaps, Secrets, volumes, containers.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
export const objectNameType = textType((raw) => raw.length <= 253 && DNS_SUBDOMAIN.test(raw), 'is not a Kubernetes object name (lowercase letters, digits, "-" and ".")')

export const absolutePathType = textType((raw) => raw.startsWith('/') && !raw.split('/').includes('..'), 'is not an absolute path without ".." (e.g. /vault/secrets)')

export const urlType = textType((raw) => {
  try {
    const url = new URL(raw)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
  } catch {
    return false
  }
}, 'is not an http or https URL (e.g. https://vault.example.com:8200)')

// A comma list of names; empty items are dropped.
export const listType = {
  parse: (raw: string): string[] =>
    raw
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== ''),
  accepts: '',
  unset: [] as string[],
} satisfies ValueType<string[]>

// Bounds on the JSON an annotation may carry. Real patches have a handful of
// operations and shallow values; these stop a hostile one from exhausting the
// stack (recursive clone and stringify) or the heap (copy doubling a subtree).
export const MAX_PATCH_OPERATIONS = 100
export const MAX_ANNOTATION_JSON_DEPTH = 32

// Iterative, so a hostile document cannot exhaust the stack here.
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (typeof node !== 'object' || node === null) continue
    if (depth > limit) return true
    for (const child of Object.values(node)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1])
  }
  return false
}

export const jsonPatchType = {
  unset: [] as unknown[],
  parse(raw: string): unknown[] | undefined {
    if (raw.trim() === '' || raw.trim() === 'null') return []
    try {
      const ops: unknown = JSON.parse(raw)
      if (ops === null) return []
      if (!Array.isArray(ops) || ops.length > MAX_PATCH_OPERATIONS || nestsDeeperThan(ops, MAX_ANNOTATION_JSON_DEPTH)) return undefined
      const valid = ops.every(
        (op) =>
          typeof op === 'object' &&
          op !== null &&
          ['add', 'remove', 'replace', 'move', 'copy', 'test'].includes(String((op as { op?: unknown }).op)) &&
          typeof (op as { path?: unknown }).path === 'string',
      )
      return valid ? ops : undefined
    } catch {
      return undefined
    }
  },
  accepts: `is not a JSON Patch (a JSON array of at most ${MAX_PATCH_OPERATIONS} RFC 6902 operations, nested at most ${MAX_ANNOTATION_JSON_DEPTH} levels)`,
} satisfies ValueType<unknown[]>

// "true", "false" or "force", as Vault's cache use_auto_auth_token takes it.
export const autoAuthTokenType: TextType = {
  unset: '',
  parse(raw) {
    if (raw === 'force') return 'force'
    const b = parseGoBool(raw)
    return b === undefined ? undefined : String(b)
  },
  accepts: 'is not accepted (true, false or force)',
}
