// Vault addresses are judged as URLs, never as strings: scheme, host and port
// are compared one by one, and a URL that carries userinfo, a query, a fragment
// or a path is refused, so `https://allowed.example:8443@attacker.example` and
// `https://attacker.example?.allowed.example` cannot pass a pin.
import picomatch from 'picomatch'

export interface ParsedAddress {
  scheme: 'http' | 'https'
  host: string
  port: string
}

const DEFAULT_PORTS: Record<string, string> = { http: '80', https: '443' }

// The address the agent will connect to, or why it is refused.
export function parseAddress(raw: string): ParsedAddress | string {
  // Where WHATWG and Go parse differently (backslashes, spaces, non-ASCII
  // hosts), the agent might reach another host than the one judged: refuse.
  if (/[^\x21-\x7e]|\\/.test(raw)) return 'contains whitespace, a backslash, a control or a non-ASCII character'
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'is not a URL'
  }
  const scheme = url.protocol.replace(/:$/, '')
  if (scheme !== 'http' && scheme !== 'https') return `has scheme ${scheme}, not http or https`
  if (url.username !== '' || url.password !== '' || /@/.test(raw.slice(raw.indexOf('//') + 2).split('/')[0]!)) return 'carries userinfo (user@)'
  if (url.search !== '' || raw.includes('?')) return 'carries a query (?)'
  if (url.hash !== '' || raw.includes('#')) return 'carries a fragment (#)'
  if (url.pathname !== '/' && url.pathname !== '') return `carries a path (${url.pathname})`
  if (url.hostname === '') return 'has no host'
  // WHATWG rewrites some hosts (2130706433 → 127.0.0.1, IDNA); Go does not:
  // judge only hosts that mean the same to both.
  const authority = raw.slice(raw.indexOf('//') + 2).split('/')[0]!.toLowerCase()
  const writtenHost = authority.startsWith('[') ? authority.slice(0, authority.indexOf(']') + 1) : authority.split(':')[0]!
  if (writtenHost !== url.hostname.toLowerCase()) return `has a host that parses differently (${url.hostname})`
  return { scheme, host: url.hostname.toLowerCase(), port: url.port || DEFAULT_PORTS[scheme]! }
}

// One vaultAddresses pattern: scheme://host[:port], each part a glob. In the
// host, `*` is one DNS label and `**` any number; a missing port means the
// scheme's default.
export type AddressMatcher = (address: ParsedAddress) => boolean

const PATTERN = /^(https?|\*):\/\/(\[[^\]]+\]|[^/:?#@[\]]+)(?::([^/?#@]+))?\/?$/

export function compileAddressPattern(pattern: string): AddressMatcher | string {
  const m = PATTERN.exec(pattern)
  if (!m) return 'is not scheme://host[:port] (globs allowed in each part; no userinfo, path, query or fragment)'
  const [, scheme, host, port] = m as unknown as [string, string, string, string | undefined]
  // Hosts are matched label by label: dots become path separators for picomatch.
  const lower = host.toLowerCase()
  const hostMatcher = lower.startsWith('[') ? (h: string) => h === lower : picomatch(lower.replace(/\./g, '/'), { dot: true })
  const portMatcher = port === undefined ? undefined : picomatch(port, { dot: true })
  return (address) => {
    if (scheme !== '*' && scheme !== address.scheme) return false
    if (!hostMatcher(address.host.startsWith('[') ? address.host : address.host.replace(/\./g, '/'))) return false
    if (portMatcher) return portMatcher(address.port)
    return address.port === DEFAULT_PORTS[address.scheme]
  }
}
