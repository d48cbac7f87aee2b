// "Did you mean": an annotation under our prefixes that the table does not
// know is most often a typo (`agent-injet`, `agent-inject-secert-db`, our own
// `native-sidecar` under vault.hashicorp.com/). The closest table name, edit
// distance at most 2, prefix either of ours, is offered with the warning.
import { ANNOTATIONS, OUR_PREFIX, VAULT_PREFIX, fullName, isOurs, matchAnnotation } from './annotations.ts'

const MAX_DISTANCE = 2
// Suggestions cost a few hundred thousand steps per key: a pod carrying
// thousands of odd annotations must not make admission slow.
export const MAX_SUGGESTED_KEYS = 20
const MAX_SUGGESTED_KEY_CHARS = 120

const EXACT = ANNOTATIONS.filter((a) => a.scope !== 'secret' && a.scope !== 'key')
const WITH_SUFFIX = ANNOTATIONS.filter((a) => a.scope !== 'pod')

// Levenshtein distance, giving up (returning limit + 1) once it exceeds limit.
export function editDistance(a: string, b: string, limit: number = MAX_DISTANCE): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    let rowMin = i
    for (let j = 1; j <= b.length; j++) {
      const value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      current.push(value)
      rowMin = Math.min(rowMin, value)
    }
    if (rowMin > limit) return limit + 1
    previous = current
  }
  return previous[b.length]!
}

// The table name closest to an unknown key under our prefixes, if close enough.
export function suggestAnnotation(key: string): string | undefined {
  const prefix = key.startsWith(VAULT_PREFIX) ? VAULT_PREFIX : key.startsWith(OUR_PREFIX) ? OUR_PREFIX : undefined
  if (!prefix || key.length > MAX_SUGGESTED_KEY_CHARS) return undefined
  const name = key.slice(prefix.length)
  let best: string | undefined
  let bestDistance = MAX_DISTANCE + 1
  const consider = (distance: number, candidate: string): void => {
    if (distance < bestDistance && candidate !== key) {
      best = candidate
      bestDistance = distance
    }
  }
  for (const spec of EXACT) consider(editDistance(name, spec.name), fullName(spec))
  // Per-secret and keyed names: the head ("agent-inject-secret-") may be the
  // misspelt part; the rest of the key is the secret's or key's own name.
  for (const spec of WITH_SUFFIX) {
    const head = spec.name + '-'
    for (let cut = head.length - MAX_DISTANCE; cut <= head.length + MAX_DISTANCE; cut++) {
      if (cut <= 0 || cut >= name.length) continue
      consider(editDistance(name.slice(0, cut), head), fullName(spec) + '-' + name.slice(cut))
    }
  }
  // A short name is too easily "close" to another: one edit in "role" is a quarter of it.
  return best !== undefined && bestDistance * 3 <= name.length ? best : undefined
}

export function unknownAnnotationMessage(key: string, suggest = true): string {
  const suggestion = suggest ? suggestAnnotation(key) : undefined
  return `${key}: unknown annotation, ignored${suggestion ? `; did you mean ${suggestion}?` : ''}`
}

// Warnings for every key under our prefixes that the table does not know.
export function unknownAnnotationWarnings(annotations: Readonly<Record<string, unknown>>): string[] {
  const unknown = Object.keys(annotations)
    .filter((key) => isOurs(key) && !matchAnnotation(key))
    .sort()
  return unknown.map((key, i) => unknownAnnotationMessage(key, i < MAX_SUGGESTED_KEYS))
}

// How a warning from unknownAnnotationMessage is recognised (--strict).
export function isUnknownAnnotationWarning(warning: string): boolean {
  return /^\S+: unknown annotation, ignored/.test(warning)
}
