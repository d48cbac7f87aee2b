// Runs HashiCorp's vault-k8s mutation handler (test/e2e/go/vault-k8s, built by
// test/e2e/build.sh) in batch mode: AdmissionReviews in, its answers out.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

type Obj = Record<string, any>

export function vaultK8sBinary(): string | undefined {
  const dirs = [process.env.VAULT_INJECTOR_E2E_BIN, join(process.env.VAULT_INJECTOR_E2E_CACHE ?? join(homedir(), '.cache', 'vault-injector-e2e'), 'bin')]
  for (const dir of dirs) {
    if (dir && existsSync(join(dir, 'vault-k8s'))) return join(dir, 'vault-k8s')
  }
  return undefined
}

// One answer per review, in order. `flags` are the injector's own flags.
export async function vaultK8sBatch(binary: string, reviews: Obj[], flags: string[]): Promise<Obj[]> {
  const child = spawn(binary, ['batch', '-log-level=error', ...flags], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const answers: Obj[] = []
  const lines = createInterface({ input: child.stdout })
  const done = (async () => {
    for await (const line of lines) answers.push(JSON.parse(line) as Obj)
  })()
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  for (const review of reviews) {
    if (!child.stdin.write(JSON.stringify(review) + '\n')) await new Promise((resolve) => child.stdin.once('drain', resolve))
  }
  child.stdin.end()
  await done
  const code = await exited
  if (code !== 0 || answers.length !== reviews.length) {
    throw new Error(`vault-k8s batch exited ${code} with ${answers.length} answers for ${reviews.length} reviews: ${stderr.slice(0, 2000)}`)
  }
  return answers
}
