// Timers that fire only when a test says so (src/kube/leader.ts Timers).
import type { Timers } from '../../src/kube/leader.ts'

export interface ManualTimers extends Timers {
  pending(): { ms: number }[]
  // Fire every pending timer of exactly this delay; returns how many fired.
  fire(ms: number): number
}

export function manualTimers(): ManualTimers {
  let next = 0
  const timers = new Map<number, { fn: () => void; ms: number }>()
  return {
    setTimeout(fn, ms) {
      const id = ++next
      timers.set(id, { fn, ms })
      return id
    },
    clearTimeout(handle) {
      timers.delete(handle as number)
    },
    pending: () => [...timers.values()].map(({ ms }) => ({ ms })),
    fire(ms) {
      const due = [...timers].filter(([, t]) => t.ms === ms)
      for (const [id, t] of due) {
        timers.delete(id)
        t.fn()
      }
      return due.length
    },
  }
}
