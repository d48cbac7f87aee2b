import t from 'tap'
import * as proto from '../../src/csi/proto.ts'

t.test('messages round-trip, proto3 defaults omitted', async (t) => {
  const request: proto.MountRequest = { attributes: '{"roleName":"r"}', secrets: '{}', targetPath: '/var/lib/kubelet/pods/x/mount', permission: '420', currentObjectVersion: [{ id: 'a', version: 'v1' }, { id: 'b', version: '' }] }
  t.same(proto.decodeMountRequest(proto.encodeMountRequest(request)), request)
  const response: proto.MountResponse = { objectVersion: [{ id: 'a', version: 'x' }], files: [{ path: 'a', mode: 0o600, contents: Buffer.from('s3cret\u00e9') }, { path: 'empty', mode: 0, contents: Buffer.alloc(0) }] }
  t.same(proto.decodeMountResponse(proto.encodeMountResponse(response)), response)
  t.same(proto.decodeMountResponse(proto.encodeMountResponse({ ...response, error: { code: 'E1' } })).error, { code: 'E1' })
  t.same(proto.decodeVersionResponse(proto.encodeVersionResponse({ version: 'v1alpha1', runtimeName: 'n', runtimeVersion: '1.0.0' })), { version: 'v1alpha1', runtimeName: 'n', runtimeVersion: '1.0.0' })
  t.same(proto.decodeVersionRequest(proto.encodeVersionRequest({ version: '' })), { version: '' })
  t.equal(proto.encodeVersionRequest({ version: '' }).length, 0)
})

t.test('bytes as protoc writes them; unknown fields skipped; truncation refused', async (t) => {
  // ObjectVersion{id:"a", version:"b"} inside MountResponse field 1.
  t.same([...proto.encodeMountResponse({ objectVersion: [{ id: 'a', version: 'b' }], files: [] })], [0x0a, 0x06, 0x0a, 0x01, 0x61, 0x12, 0x01, 0x62])
  // File mode 420 is a two-byte varint.
  t.same([...proto.encodeMountResponse({ objectVersion: [], files: [{ path: 'p', mode: 420, contents: Buffer.from('c') }] })], [0x1a, 0x09, 0x0a, 0x01, 0x70, 0x10, 0xa4, 0x03, 0x1a, 0x01, 0x63])
  // An unknown varint field (9) and an unknown length-delimited field (10) before attributes.
  const withUnknown = Buffer.from([0x48, 0x96, 0x01, 0x52, 0x02, 0x68, 0x69, 0x0a, 0x02, 0x7b, 0x7d])
  t.equal(proto.decodeMountRequest(withUnknown).attributes, '{}')
  t.throws(() => proto.decodeMountRequest(Buffer.from([0x0a, 0x05, 0x7b])), /truncated field/)
})
