// RFC 6902 patch between two JSON documents.
//
// fast-json-patch's compare() treats arrays as index-keyed objects: inserting
// one element at the front of initContainers (agent-init-first) turns into a
// `replace` of every later element, which overwrites user data in the patch.
// Here arrays keep their common prefix and suffix and only the middle changes,
// so an insertion is one `add` at its index and user elements are never
// rewritten. Values in the ops share structure with `to` (the caller's fresh
// mutated pod) instead of being copied: the patch is serialized, never edited.
// The walk is linear in the size of the documents: a pod with
// thousands of env vars costs one comparison per value.
import type { Operation } from 'fast-json-patch'

type Json = unknown

function escape(token: string): string {
  if (!token.includes('~') && !token.includes('/')) return token
  return token.replace(/~/g, '~0').replace(/\//g, '~1')
}

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false
    return true
  }
  if (isObject(a)) {
    if (!isObject(b)) return false
    const keys = Object.keys(a)
    if (keys.length !== Object.keys(b).length) return false
    for (const key of keys) if (!Object.hasOwn(b, key) || !deepEqual(a[key], b[key])) return false
    return true
  }
  return false
}

export function diff(from: Json, to: Json): Operation[] {
  const ops: Operation[] = []
  walk(from, to, '', ops)
  return ops
}

function walk(from: Json, to: Json, path: string, ops: Operation[]): void {
  if (from === to) return
  if (Array.isArray(from) && Array.isArray(to)) return diffArrays(from, to, path, ops)
  if (isObject(from) && isObject(to)) return diffObjects(from, to, path, ops)
  if (deepEqual(from, to)) return
  ops.push({ op: 'replace', path, value: to })
}

// Own keys only ("constructor" in an annotation map is a key like any other),
// and no child path is built for a value that is shared unchanged, which is
// most of a pod.
function diffObjects(from: Record<string, Json>, to: Record<string, Json>, path: string, ops: Operation[]): void {
  for (const key of Object.keys(from)) {
    if (!Object.hasOwn(to, key)) ops.push({ op: 'remove', path: `${path}/${escape(key)}` })
  }
  for (const key of Object.keys(to)) {
    const value = to[key]
    if (!Object.hasOwn(from, key)) ops.push({ op: 'add', path: `${path}/${escape(key)}`, value })
    else if (from[key] !== value) walk(from[key], value, `${path}/${escape(key)}`, ops)
  }
}

// Arrays of objects with unique names (containers, volumes, env) are aligned
// by name, so inserting an element anywhere is one `add` and every other
// element is diffed against itself.
function uniqueNames(items: Json[]): Map<string, Json> | undefined {
  const byName = new Map<string, Json>()
  for (const item of items) {
    if (!isObject(item) || typeof item.name !== 'string' || byName.has(item.name)) return undefined
    byName.set(item.name, item)
  }
  return byName
}

function diffNamedArrays(from: Json[], to: Json[], path: string, ops: Operation[]): boolean {
  const fromByName = uniqueNames(from)
  const toByName = uniqueNames(to)
  if (!fromByName || !toByName) return false
  const kept = from.filter((item) => toByName.has((item as { name: string }).name))
  const keptInTo = to.filter((item) => fromByName.has((item as { name: string }).name))
  // Only when the common elements keep their order; otherwise fall back.
  if (!kept.every((item, i) => (item as { name: string }).name === (keptInTo[i] as { name: string }).name)) return false
  for (let i = from.length - 1; i >= 0; i--) {
    if (!toByName.has((from[i] as { name: string }).name)) ops.push({ op: 'remove', path: `${path}/${i}` })
  }
  let settled = 0
  for (let i = 0; i < to.length; i++) {
    const item = to[i] as { name: string }
    const before = fromByName.get(item.name)
    if (before !== undefined) {
      walk(before, item, `${path}/${i}`, ops)
      settled++
    } else {
      const atEnd = settled === kept.length
      ops.push({ op: 'add', path: atEnd ? `${path}/-` : `${path}/${i}`, value: item })
    }
  }
  return true
}

function diffArrays(from: Json[], to: Json[], path: string, ops: Operation[]): void {
  if (from.length !== to.length && diffNamedArrays(from, to, path, ops)) return
  if (from.length === to.length) {
    // Same length: element-wise, so a changed container yields ops inside it.
    for (let i = 0; i < from.length; i++) walk(from[i], to[i], `${path}/${i}`, ops)
    return
  }
  let head = 0
  while (head < from.length && head < to.length && deepEqual(from[head], to[head])) head++
  let tail = 0
  while (tail < from.length - head && tail < to.length - head && deepEqual(from[from.length - 1 - tail], to[to.length - 1 - tail])) tail++
  const removed = from.length - head - tail
  const added = to.length - head - tail
  // Elements changed in place before the insertion or removal point.
  const paired = Math.min(removed, added)
  for (let i = 0; i < paired; i++) walk(from[head + i], to[head + i], `${path}/${head + i}`, ops)
  // Remove from the highest index down so earlier indices stay valid.
  for (let i = removed - 1; i >= paired; i--) ops.push({ op: 'remove', path: `${path}/${head + i}` })
  for (let i = paired; i < added; i++) {
    // With no common tail the insertion point is the end of the array.
    const index = head + i
    ops.push({ op: 'add', path: tail === 0 ? `${path}/-` : `${path}/${index}`, value: to[index] })
  }
}
