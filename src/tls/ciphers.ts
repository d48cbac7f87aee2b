// AGENT_INJECT_TLS_CIPHER_SUITES: vault-k8s takes Go's cipher suite names
// (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...); Node takes OpenSSL's
// (ECDHE-RSA-AES128-GCM-SHA256). Both are accepted here, so a vault-k8s
// setting carries over unchanged.
import { createSecureContext } from 'node:tls'

// Go's crypto/tls names (including its older aliases) → OpenSSL names.
const GO_TO_OPENSSL: Readonly<Record<string, string>> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_CBC_SHA256: 'AES128-SHA256',
  TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA: 'ECDHE-RSA-DES-CBC3-SHA',
  TLS_RSA_WITH_3DES_EDE_CBC_SHA: 'DES-CBC3-SHA',
}

// TLS 1.3 suites have the same name in Go, IANA and OpenSSL.
const TLS13 = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']

// TLS 1.2 without a setting: forward secrecy (ECDHE) and AEAD only. Node's own
// default also offers static-RSA key exchange and CBC suites.
export const DEFAULT_TLS12 = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
]

// ECDHE key exchange with an AEAD cipher: what we accept in the setting too.
function strong(openSslName: string): boolean {
  return /^ECDHE-(ECDSA|RSA)-/.test(openSslName) && /(-GCM-|CHACHA20-POLY1305)/.test(openSslName)
}

function usable(openSslName: string): boolean {
  try {
    createSecureContext({ ciphers: openSslName })
    return true
  } catch {
    return false
  }
}

// The setting (comma list) → Node's `ciphers` option; empty means TLS 1.3's
// suites and DEFAULT_TLS12. Throws, naming the entry, when a name is unknown,
// this Node's OpenSSL cannot use it (OpenSSL itself would silently drop it),
// or it is a static-RSA or CBC suite (vault-k8s accepts those; we do not).
export function cipherList(setting: string): string {
  const names = setting.split(',').map((name) => name.trim()).filter((name) => name !== '')
  if (names.length === 0) return [...TLS13, ...DEFAULT_TLS12].join(':')
  const tls12: string[] = []
  const tls13: string[] = []
  for (const name of names) {
    if (TLS13.includes(name)) {
      tls13.push(name)
      continue
    }
    const openSsl = GO_TO_OPENSSL[name] ?? name
    if (!/^[A-Za-z0-9-]+$/.test(openSsl) || !usable(openSsl)) {
      throw new Error(`AGENT_INJECT_TLS_CIPHER_SUITES: "${name}" is not a cipher suite this server supports (use Go names such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or OpenSSL names such as ECDHE-RSA-AES128-GCM-SHA256)`)
    }
    if (!strong(openSsl)) {
      throw new Error(`AGENT_INJECT_TLS_CIPHER_SUITES: "${name}" is refused: TLS 1.2 suites must use ECDHE key exchange and an AEAD cipher (GCM or ChaCha20-Poly1305), e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`)
    }
    tls12.push(openSsl)
  }
  // Go applies the list to TLS 1.2 only; in Node a list without TLS 1.3
  // suites would switch TLS 1.3 off, so keep its suites unless some are named.
  return [...(tls13.length > 0 ? tls13 : TLS13), ...tls12].join(':')
}
