// The messages of the driver's provider API (sigs.k8s.io/secrets-store-csi-driver
// provider/v1alpha1/service.proto, v1.6.0), encoded and decoded by hand: six
// small messages of strings, bytes, an int32 and repeated sub-messages do not
// need a protobuf runtime loaded into the provider.
export interface ObjectVersion {
  id: string
  version: string
}

export interface VersionRequest {
  version: string
}

export interface VersionResponse {
  version: string
  runtimeName: string
  runtimeVersion: string
}

export interface MountRequest {
  // The SecretProviderClass parameters plus the pod's volume attributes, as a JSON object of strings.
  attributes: string
  // nodePublishSecretRef data, as a JSON object.
  secrets: string
  targetPath: string
  // The default file mode, as JSON (a decimal number).
  permission: string
  currentObjectVersion: ObjectVersion[]
}

export interface File {
  path: string
  mode: number
  contents: Buffer
}

export interface MountResponse {
  objectVersion: ObjectVersion[]
  error?: { code: string }
  files: File[]
}

export class ProtoError extends Error {}

const WIRE_VARINT = 0
const WIRE_I64 = 1
const WIRE_LEN = 2
const WIRE_I32 = 5

class Reader {
  #buf: Buffer
  #pos = 0
  constructor(buf: Buffer) {
    this.#buf = buf
  }
  done(): boolean {
    return this.#pos >= this.#buf.length
  }
  varint(): bigint {
    let result = 0n
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.#pos >= this.#buf.length) throw new ProtoError('truncated varint')
      const byte = this.#buf[this.#pos++]!
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return result
    }
    throw new ProtoError('varint too long')
  }
  bytes(): Buffer {
    const length = Number(this.varint())
    if (this.#pos + length > this.#buf.length) throw new ProtoError('truncated field')
    const out = this.#buf.subarray(this.#pos, this.#pos + length)
    this.#pos += length
    return out
  }
  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint()
    else if (wire === WIRE_LEN) this.bytes()
    else if (wire === WIRE_I64) this.#pos += 8
    else if (wire === WIRE_I32) this.#pos += 4
    else throw new ProtoError(`unsupported wire type ${wire}`)
  }
}

// Calls visit(fieldNumber, wireType, reader) for every field; unknown fields are skipped by the caller's default.
function readFields(buf: Buffer, visit: (field: number, wire: number, r: Reader) => boolean): void {
  const r = new Reader(buf)
  while (!r.done()) {
    const key = Number(r.varint())
    const field = key >>> 3
    const wire = key & 7
    if (!visit(field, wire, r)) r.skip(wire)
  }
}

function varintBytes(value: bigint): number[] {
  const out: number[] = []
  let v = BigInt.asUintN(64, value)
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  return out
}

class Writer {
  #parts: Buffer[] = []
  #key(field: number, wire: number): void {
    this.#parts.push(Buffer.from(varintBytes(BigInt((field << 3) | wire))))
  }
  // proto3: default values (empty, 0) are not written.
  string(field: number, value: string): this {
    if (value !== '') this.bytes(field, Buffer.from(value, 'utf8'))
    return this
  }
  bytes(field: number, value: Buffer, always = false): this {
    if (value.length === 0 && !always) return this
    this.#key(field, WIRE_LEN)
    this.#parts.push(Buffer.from(varintBytes(BigInt(value.length))), value)
    return this
  }
  int32(field: number, value: number): this {
    if (value === 0) return this
    this.#key(field, WIRE_VARINT)
    // Negative int32 values are sign-extended to 64 bits, as protobuf does.
    this.#parts.push(Buffer.from(varintBytes(BigInt(value))))
    return this
  }
  message(field: number, value: Buffer): this {
    return this.bytes(field, value, true)
  }
  finish(): Buffer {
    return Buffer.concat(this.#parts)
  }
}

const text = (r: Reader): string => r.bytes().toString('utf8')

function decodeObjectVersion(buf: Buffer): ObjectVersion {
  const out: ObjectVersion = { id: '', version: '' }
  readFields(buf, (field, wire, r) => {
    if (wire !== WIRE_LEN) return false
    if (field === 1) out.id = text(r)
    else if (field === 2) out.version = text(r)
    else return false
    return true
  })
  return out
}

function encodeObjectVersion(v: ObjectVersion): Buffer {
  return new Writer().string(1, v.id).string(2, v.version).finish()
}

export function decodeVersionRequest(buf: Buffer): VersionRequest {
  const out: VersionRequest = { version: '' }
  readFields(buf, (field, wire, r) => {
    if (field !== 1 || wire !== WIRE_LEN) return false
    out.version = text(r)
    return true
  })
  return out
}

export function encodeVersionRequest(v: VersionRequest): Buffer {
  return new Writer().string(1, v.version).finish()
}

export function encodeVersionResponse(v: VersionResponse): Buffer {
  return new Writer().string(1, v.version).string(2, v.runtimeName).string(3, v.runtimeVersion).finish()
}

export function decodeVersionResponse(buf: Buffer): VersionResponse {
  const out: VersionResponse = { version: '', runtimeName: '', runtimeVersion: '' }
  readFields(buf, (field, wire, r) => {
    if (wire !== WIRE_LEN) return false
    if (field === 1) out.version = text(r)
    else if (field === 2) out.runtimeName = text(r)
    else if (field === 3) out.runtimeVersion = text(r)
    else return false
    return true
  })
  return out
}

export function decodeMountRequest(buf: Buffer): MountRequest {
  const out: MountRequest = { attributes: '', secrets: '', targetPath: '', permission: '', currentObjectVersion: [] }
  readFields(buf, (field, wire, r) => {
    if (wire !== WIRE_LEN) return false
    if (field === 1) out.attributes = text(r)
    else if (field === 2) out.secrets = text(r)
    else if (field === 3) out.targetPath = text(r)
    else if (field === 4) out.permission = text(r)
    else if (field === 5) out.currentObjectVersion.push(decodeObjectVersion(r.bytes()))
    else return false
    return true
  })
  return out
}

export function encodeMountRequest(m: MountRequest): Buffer {
  const w = new Writer().string(1, m.attributes).string(2, m.secrets).string(3, m.targetPath).string(4, m.permission)
  for (const v of m.currentObjectVersion) w.message(5, encodeObjectVersion(v))
  return w.finish()
}

export function encodeMountResponse(m: MountResponse): Buffer {
  const w = new Writer()
  for (const v of m.objectVersion) w.message(1, encodeObjectVersion(v))
  if (m.error) w.message(2, new Writer().string(1, m.error.code).finish())
  for (const f of m.files) w.message(3, new Writer().string(1, f.path).int32(2, f.mode).bytes(3, f.contents).finish())
  return w.finish()
}

export function decodeMountResponse(buf: Buffer): MountResponse {
  const out: MountResponse = { objectVersion: [], files: [] }
  readFields(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) out.objectVersion.push(decodeObjectVersion(r.bytes()))
    else if (field === 2 && wire === WIRE_LEN) {
      const error = { code: '' }
      readFields(r.bytes(), (f, w, rr) => (f === 1 && w === WIRE_LEN ? ((error.code = text(rr)), true) : false))
      out.error = error
    } else if (field === 3 && wire === WIRE_LEN) {
      const file: File = { path: '', mode: 0, contents: Buffer.alloc(0) }
      readFields(r.bytes(), (f, w, rr) => {
        if (f === 1 && w === WIRE_LEN) file.path = text(rr)
        else if (f === 2 && w === WIRE_VARINT) file.mode = Number(BigInt.asIntN(32, rr.varint()))
        else if (f === 3 && w === WIRE_LEN) file.contents = Buffer.from(rr.bytes())
        else return false
        return true
      })
      out.files.push(file)
    } else return false
    return true
  })
  return out
}
