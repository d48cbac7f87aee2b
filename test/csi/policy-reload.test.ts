// The CSI provider reloads its policy file in place when Kubernetes updates
// the mounted ConfigMap, which it does by swapping the `..data` symlink (the
// file itself never changes: policy.yaml -> ..data/policy.yaml -> a new
// timestamped folder). That is why the chart puts no policy checksum on the
// provider's pods: a policy edit must not restart the provider (each restart
// can change object versions and roll opted-in workloads).
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const root = new URL('../../', import.meta.url).pathname
const policy = readFileSync(join(root, 'examples/policy/policy.yaml'), 'utf8')
const named = (name: string): string => policy.replace(/^ {2}name: fleet$/m, `  name: ${name}`)

// As the kubelet's atomic writer lays out a ConfigMap volume.
function writeVersion(dir: string, version: string, text: string): void {
  mkdirSync(join(dir, version))
  writeFileSync(join(dir, version, 'policy.yaml'), text)
  symlinkSync(version, join(dir, '..data_tmp'))
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
}

t.test('csi-provider: a ConfigMap update (the ..data symlink swap) reloads the policy in the running process', async (t) => {
  t.not(named('first'), policy, 'the example policy is renamed')
  const dir = t.testdir({ policy: {} })
  const mount = join(dir, 'policy')
  writeVersion(mount, '..2026_12_03_14_00_00.000000001', named('first'))
  symlinkSync('..data/policy.yaml', join(mount, 'policy.yaml'))

  // A socket path must fit in 108 bytes: not under tap's long fixture folder.
  const socketDir = mkdtempSync(join(tmpdir(), 'csi-reload-'))
  const child = spawn(process.execPath, [join(root, 'bin/vault-injector.js'), 'csi-provider', '--policy', join(mount, 'policy.yaml'), '--socket', join(socketDir, 'vault.sock'), '--no-kubernetes', '--log-level', 'info'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    child.kill('SIGTERM')
    await exited
    rmSync(socketDir, { recursive: true, force: true })
  })
  // Waits for a log line, or fails when the process exits first.
  const logged = (pattern: RegExp): Promise<void> =>
    new Promise((resolve, reject) => {
      const look = (): void => {
        if (pattern.test(output)) return resolve()
        if (child.exitCode !== null) return reject(new Error(`the provider exited before logging ${pattern}:\n${output}`))
        setTimeout(look, 50)
      }
      look()
    })

  await logged(/"name":"first"[^\n]*"msg":"policy loaded"|"msg":"policy loaded"[^\n]*"name":"first"/)
  await logged(/CSI provider serving on/)
  t.pass('the provider serves with the first policy')

  writeVersion(mount, '..2026_12_03_14_05_00.000000002', named('second'))
  rmSync(join(mount, '..2026_12_03_14_00_00.000000001'), { recursive: true })
  await logged(/"name":"second"[^\n]*"msg":"policy reloaded"|"msg":"policy reloaded"[^\n]*"name":"second"/)
  t.pass('the swapped-in policy is in force, without a restart')
  t.equal(child.exitCode, null, 'the same process still runs')
  t.notMatch(output, /policy not reloaded/, 'no failed load on the way (the swap is atomic)')
})
