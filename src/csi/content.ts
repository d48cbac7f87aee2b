// One object's file contents from Vault's answer, as HashiCorp's provider
// makes them: the whole response as JSON without a secretKey; with one, the
// key's value (inside .data.data for KV v2), raw if a string, JSON otherwise;
// then decoded (utf-8, base64 or hex).
import { goJson, goSecretJson } from './gojson.ts'
import type { CsiObject } from './params.ts'

export class ContentError extends Error {}

function decode(object: CsiObject, value: Buffer): Buffer {
  const encoding = object.encoding.toLowerCase()
  if (encoding === '' || encoding === 'utf-8') return value
  const text = value.toString('utf8')
  if (encoding === 'base64') {
    // Go's StdEncoding is strict: padding required, no whitespace.
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) throw new ContentError(`object "${object.objectName}" (${object.secretPath}): key "${object.secretKey}" is not valid base64`)
    return Buffer.from(text, 'base64')
  }
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) throw new ContentError(`object "${object.objectName}" (${object.secretPath}): key "${object.secretKey}" is not valid hex`)
  return Buffer.from(text, 'hex')
}

export function contentOf(object: CsiObject, response: Record<string, unknown>): Buffer {
  if (object.secretKey === '') return Buffer.from(goSecretJson(response), 'utf8')
  const root = response.data as Record<string, unknown>
  const nested = root.data
  const data = typeof nested === 'object' && nested !== null && !Array.isArray(nested) ? (nested as Record<string, unknown>) : root
  if (!Object.hasOwn(data, object.secretKey)) throw new ContentError(`object "${object.objectName}" (${object.secretPath}): key "${object.secretKey}" does not exist at the secret path`)
  const value = data[object.secretKey]
  return decode(object, Buffer.from(typeof value === 'string' ? value : goJson(value), 'utf8'))
}
