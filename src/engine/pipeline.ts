// TEMPORARY stub while the engine is written: skips every pod.
import type { EngineInput, EngineResult } from './types.ts'

export function injectPod(input: EngineInput): EngineResult {
  return { decision: 'skip', reason: 'engine not yet implemented', pod: structuredClone(input.pod), patch: [], warnings: [] }
}
