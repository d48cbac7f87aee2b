// The patch diff on its own: keys that objects inherit names for
// ("constructor", "toString") are plain keys in JSON and must diff as such.
import t from 'tap'
import fastJsonPatch from 'fast-json-patch'
import { diff } from '../../src/engine/diff.ts'

t.test('keys named like Object.prototype members are added and removed, not replaced', async (t) => {
  const from = { metadata: { annotations: { a: '1', toString: 'kept', valueOf: 'gone' } } }
  const to = { metadata: { annotations: { a: '1', toString: 'kept', constructor: 'new', hasOwnProperty: 'new too' } } }
  const ops = diff(from, to)
  t.same(ops, [
    { op: 'remove', path: '/metadata/annotations/valueOf' },
    { op: 'add', path: '/metadata/annotations/constructor', value: 'new' },
    { op: 'add', path: '/metadata/annotations/hasOwnProperty', value: 'new too' },
  ])
  const applied = fastJsonPatch.applyPatch(structuredClone(from), ops, true).newDocument
  t.same(applied, to, 'the patch applies, with validation, and gives the target')
})

t.test('shared unchanged subtrees give no ops; changed leaves give one replace each', async (t) => {
  const shared = { containers: [{ name: 'app', env: [{ name: 'A', value: '1' }] }] }
  t.same(diff({ spec: shared, n: 1 }, { spec: shared, n: 2 }), [{ op: 'replace', path: '/n', value: 2 }])
  t.same(diff({ 'a/b': { '~c': 1 } }, { 'a/b': { '~c': 2 } }), [{ op: 'replace', path: '/a~1b/~0c', value: 2 }], 'path tokens are escaped')
})
