// What a Consul Template reads from Vault, found by scanning its actions the
// way Go's text/template lexer does: interpreted and raw (backtick) strings,
// comments, custom delimiters. A read whose path is not one string literal
// (printf, a variable, a pipeline of anything but a literal), the `secrets`
// listing, and the functions that reach outside Vault (file, plugin,
// writeToFile) make the template "dynamic": its reads cannot be judged
// statically. Text outside actions is never a read.

export interface TemplateReads {
  // Vault paths read (secret, pkiCert) with a literal argument, in order of appearance.
  paths: string[]
  // Why the template cannot be judged statically, if it cannot (one short reason per construct).
  dynamic: string[]
}

// Functions that take a Vault path as their first argument.
const PATH_FUNCTIONS = new Set(['secret', 'pkiCert'])
// Functions whose effect a static reading cannot bound.
const OPAQUE_FUNCTIONS: Record<string, string> = {
  secrets: 'lists Vault paths with `secrets`',
  file: 'reads a local file with `file`',
  plugin: 'runs a program with `plugin`',
  writeToFile: 'writes a local file with `writeToFile`',
  executeTemplate: 'executes a named template with `executeTemplate`',
}

// Actions whose pipeline passes its value on unchanged.
const KEYWORDS = new Set(['with', 'if', 'range', 'else'])

type Token =
  | { kind: 'string'; value: string }
  | { kind: 'ident'; value: string }
  | { kind: 'pipe' }
  | { kind: 'open' }
  | { kind: 'close' }
  | { kind: 'other'; value: string }

const ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"' }

// Go's interpreted string literal, from the opening quote at `start`.
// Returns the decoded value and the index after the closing quote, or undefined.
function interpreted(text: string, start: number): { value: string; end: number } | undefined {
  let out = ''
  let i = start + 1
  while (i < text.length) {
    const c = text[i]!
    if (c === '"') return { value: out, end: i + 1 }
    if (c === '\n') return undefined
    if (c !== '\\') {
      out += c
      i++
      continue
    }
    const e = text[i + 1]
    if (e === undefined) return undefined
    if (e in ESCAPES) {
      out += ESCAPES[e]
      i += 2
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const digits = e === 'x' ? 2 : e === 'u' ? 4 : 8
      const hex = text.slice(i + 2, i + 2 + digits)
      if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(hex)) return undefined
      const code = Number.parseInt(hex, 16)
      if (code > 0x10ffff) return undefined
      out += String.fromCodePoint(code)
      i += 2 + digits
    } else if (/[0-7]/.test(e)) {
      const oct = text.slice(i + 1, i + 4)
      if (!/^[0-7]{3}$/.test(oct)) return undefined
      out += String.fromCharCode(Number.parseInt(oct, 8))
      i += 4
    } else {
      return undefined
    }
  }
  return undefined
}

const TRIM_RIGHT = /\s+-/y
const WORD = /[A-Za-z_][A-Za-z0-9_]*/y
const COMMENT_END = /\s*-?\s*/y

// Tokens of one action, from `start` (after the left delimiter) to the right
// delimiter. Returns the tokens and the index after the right delimiter.
function lexAction(text: string, start: number, right: string): { tokens: Token[]; end: number } | undefined {
  const tokens: Token[] = []
  let i = start
  // Trim marker and comment right after the delimiter.
  if (text.startsWith('- ', i) || text.startsWith('-\t', i) || text.startsWith('-\n', i)) i += 1
  while (i < text.length && /\s/.test(text[i]!)) i++
  if (text.startsWith('/*', i)) {
    const close = text.indexOf('*/', i + 2)
    if (close < 0) return undefined
    COMMENT_END.lastIndex = close + 2
    const after = COMMENT_END.exec(text)![0].length
    if (!text.startsWith(right, close + 2 + after)) return undefined
    return { tokens, end: close + 2 + after + right.length }
  }
  while (i < text.length) {
    TRIM_RIGHT.lastIndex = i
    const trim = TRIM_RIGHT.exec(text)
    if (trim && text.startsWith(right, i + trim[0].length)) return { tokens, end: i + trim[0].length + right.length }
    if (text.startsWith(right, i)) return { tokens, end: i + right.length }
    const c = text[i]!
    if (/\s/.test(c)) {
      i++
    } else if (c === '"') {
      const s = interpreted(text, i)
      if (!s) return undefined
      tokens.push({ kind: 'string', value: s.value })
      i = s.end
    } else if (c === '`') {
      const close = text.indexOf('`', i + 1)
      if (close < 0) return undefined
      // Go drops carriage returns from raw strings.
      tokens.push({ kind: 'string', value: text.slice(i + 1, close).replace(/\r/g, '') })
      i = close + 1
    } else if (c === "'") {
      const close = text.indexOf("'", i + 1)
      if (close < 0) return undefined
      tokens.push({ kind: 'other', value: text.slice(i, close + 1) })
      i = close + 1
    } else if (c === '|') {
      tokens.push({ kind: 'pipe' })
      i++
    } else if (c === '(') {
      tokens.push({ kind: 'open' })
      i++
    } else if (c === ')') {
      tokens.push({ kind: 'close' })
      i++
    } else {
      WORD.lastIndex = i
      const word = WORD.exec(text)
      if (word) {
        // A field or method (.secret) is not the function.
        const prev = i > 0 ? text[i - 1] : ''
        tokens.push(prev === '.' ? { kind: 'other', value: word[0] } : { kind: 'ident', value: word[0] })
        i += word[0].length
      } else {
        let j = i + 1
        while (j < text.length && !/[\s"`'|()]/.test(text[j]!) && !text.startsWith(right, j) && !(c !== '$' && /[A-Za-z_]/.test(text[j]!) && text[j - 1] !== '.' && !/[A-Za-z0-9_$]/.test(text[j - 1]!))) j++
        tokens.push({ kind: 'other', value: text.slice(i, j) })
        i = j
      }
    }
  }
  return undefined
}

// Reads found in one action's tokens.
function readsOf(tokens: Token[], out: TemplateReads): void {
  tokens.forEach((token, i) => {
    if (token.kind !== 'ident') return
    const opaque = OPAQUE_FUNCTIONS[token.value]
    if (opaque) {
      out.dynamic.push(opaque)
      return
    }
    if (!PATH_FUNCTIONS.has(token.value)) return
    const next = tokens[i + 1]
    const prev = tokens[i - 1]
    if (next?.kind === 'string') {
      out.paths.push(next.value)
      return
    }
    // "path" | secret: the path is the previous command, when that is one literal.
    const endsCommand = next === undefined || next.kind === 'pipe' || next.kind === 'close'
    if (prev?.kind === 'pipe' && endsCommand) {
      const before = tokens[i - 2]
      const start = tokens[i - 3]
      const plain = start === undefined || start.kind === 'open' || (start.kind === 'other' && /^:?=$/.test(start.value)) || (start.kind === 'ident' && KEYWORDS.has(start.value))
      if (before?.kind === 'string' && plain) {
        out.paths.push(before.value)
        return
      }
    }
    out.dynamic.push(`\`${token.value}\` reads a path that is not a string literal`)
  })
}

// The pods of one workload carry the same templates: each is read once.
const CACHE_ENTRIES = 512
const cache = new Map<string, TemplateReads>()

export function templateReads(contents: string, left = '{{', right = '}}'): TemplateReads {
  const key = `${left}\u0000${right}\u0000${contents}`
  const hit = cache.get(key)
  if (hit) return hit
  const reads = read(contents, left, right)
  if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value!)
  cache.set(key, reads)
  return reads
}

function read(contents: string, left: string, right: string): TemplateReads {
  const out: TemplateReads = { paths: [], dynamic: [] }
  const l = left === '' ? '{{' : left
  const r = right === '' ? '}}' : right
  let i = 0
  while (i < contents.length) {
    const open = contents.indexOf(l, i)
    if (open < 0) break
    const action = lexAction(contents, open + l.length, r)
    if (!action) {
      out.dynamic.push('an action is not closed or does not lex')
      break
    }
    readsOf(action.tokens, out)
    i = action.end
  }
  out.paths = [...new Set(out.paths)]
  out.dynamic = [...new Set(out.dynamic)]
  return out
}
