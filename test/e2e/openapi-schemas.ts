// JSON Schemas for kubeconform, made from the e2e kube-apiserver's own
// OpenAPI (/openapi/v2): one standalone, strict schema per kind, as
// kubeconform's schema sets are made (openapi2jsonschema), named the way its
// -schema-location template looks them up ({{ .ResourceKind }}{{ .KindSuffix }}.json).
// kubeconform cannot download schemas here, and these describe exactly the
// Kubernetes version the e2e runs.
import { mkdirSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { join } from 'node:path'
import type { ControlPlane } from './harness.ts'

type Schema = Record<string, any>

async function openapiV2(cp: ControlPlane): Promise<{ definitions: Record<string, Schema> }> {
  const options: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' } }
  await cp.kubeConfig.applyToHTTPSOptions(options)
  return new Promise((resolve, reject) => {
    const req = https.request(`${cp.apiUrl}/openapi/v2`, options, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')))
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`/openapi/v2: HTTP ${res.statusCode}`))))
    })
    req.on('error', reject)
    req.end()
  })
}

// Values Kubernetes accepts as a number or a string.
const SPECIAL: Record<string, Schema> = {
  'io.k8s.apimachinery.pkg.util.intstr.IntOrString': { oneOf: [{ type: 'string' }, { type: 'integer' }] },
  'io.k8s.apimachinery.pkg.api.resource.Quantity': { oneOf: [{ type: 'string' }, { type: 'number' }] },
}

// Every $ref inlined (a recursive reference becomes "anything"), and every
// object with declared properties closed (additionalProperties: false): a
// misspelt field is an error, as kubeconform -strict means it.
function standalone(schema: Schema, definitions: Record<string, Schema>, path: string[] = []): Schema {
  if (Array.isArray(schema)) return schema.map((s) => standalone(s, definitions, path)) as unknown as Schema
  if (typeof schema !== 'object' || schema === null) return schema
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.replace('#/definitions/', '')
    if (SPECIAL[name]) return SPECIAL[name]
    if (path.includes(name)) return {}
    return standalone(definitions[name] ?? {}, definitions, [...path, name])
  }
  if (schema.format === 'int-or-string') return SPECIAL['io.k8s.apimachinery.pkg.util.intstr.IntOrString']!
  const out: Schema = {}
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties') out.properties = Object.fromEntries(Object.entries(value as Schema).map(([k, v]) => [k, standalone(v as Schema, definitions, path)]))
    else if (key === 'items' || key === 'additionalProperties' || key === 'allOf' || key === 'oneOf' || key === 'anyOf') out[key] = typeof value === 'object' ? standalone(value as Schema, definitions, path) : value
    else out[key] = value
  }
  if (out.properties && out.additionalProperties === undefined && !out['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false
  return out
}

// Writes the schemas of the kinds asked for into dir; returns kubeconform's
// -schema-location for them. A kind not written has no schema, which
// kubeconform reports as an error unless told to skip that kind.
export async function writeKubeconformSchemas(cp: ControlPlane, dir: string, kinds: ReadonlySet<string>): Promise<{ location: string; count: number }> {
  const { definitions } = await openapiV2(cp)
  mkdirSync(dir, { recursive: true })
  let count = 0
  for (const [name, definition] of Object.entries(definitions)) {
    for (const gvk of (definition['x-kubernetes-group-version-kind'] ?? []) as { group: string; version: string; kind: string }[]) {
      if (!kinds.has(gvk.kind)) continue
      const suffix = `${gvk.group ? `-${gvk.group.split('.')[0]!.toLowerCase()}` : ''}-${gvk.version.toLowerCase()}`
      const schema = standalone({ $ref: `#/definitions/${name}` }, definitions)
      writeFileSync(join(dir, `${gvk.kind.toLowerCase()}${suffix}.json`), JSON.stringify({ $schema: 'http://json-schema.org/schema#', ...schema }))
      count++
    }
  }
  return { location: join(dir, '{{ .ResourceKind }}{{ .KindSuffix }}.json'), count }
}
