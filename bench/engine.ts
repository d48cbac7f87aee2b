// Engine-only cost per pod: no HTTP, no TLS, no JSON parsing of the request.
import { injectPod } from '../src/engine/index.ts'
import { defaultSettings } from '../src/settings.ts'
import type { Scenario } from './scenarios.ts'

export interface EngineFigures {
  name: string
  meanUs: number
  p50Us: number
  p99Us: number
  patchOps: number
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

export function benchEngine(scenario: Scenario, durationMs = 2000): EngineFigures {
  const settings = defaultSettings()
  const input = { pod: scenario.pod, namespace: 'shop', settings }
  for (let i = 0; i < 200; i++) injectPod(input) // warm-up (JIT)
  const samples: number[] = []
  const end = performance.now() + durationMs
  let ops = 0
  while (performance.now() < end) {
    const start = performance.now()
    ops = injectPod(input).patch.length
    samples.push((performance.now() - start) * 1000)
  }
  samples.sort((a, b) => a - b)
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length
  return { name: scenario.name, meanUs: mean, p50Us: percentile(samples, 50), p99Us: percentile(samples, 99), patchOps: ops }
}

if (import.meta.main) {
  const { scenarios } = await import('./scenarios.ts')
  for (const s of scenarios()) {
    const f = benchEngine(s)
    process.stdout.write(`${f.name.padEnd(48)} mean ${f.meanUs.toFixed(1)} µs  p50 ${f.p50Us.toFixed(1)} µs  p99 ${f.p99Us.toFixed(1)} µs  (${f.patchOps} ops)\n`)
  }
}
