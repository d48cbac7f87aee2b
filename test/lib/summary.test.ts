// test/lib/summary.sh, the one reader of tap's closing summary, and .ci/run's
// closing line built from it: .ci/run runs for real in a temporary folder
// with a stand-in `npm` (and `go`) that prints each part's log.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const ROOT = new URL('../../', import.meta.url).pathname
const SUMMARY = join(ROOT, 'test/lib/summary.sh')
const dir = mkdtempSync(join(tmpdir(), 'summary-test-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function summary(log: string, status: number): string {
  const file = join(dir, 'tap.log')
  writeFileSync(file, log)
  const r = spawnSync('bash', ['-c', `source ${SUMMARY}; tap_summary ${file} ${status}`], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(r.stderr)
  return r.stdout.trim()
}

t.test('tap_summary repeats the last summary line with every count', async (t) => {
  t.equal(summary('ok 1 - a\n# { total: 12, pass: 12 }\n# time=1ms\n', 0), '# { total: 12, pass: 12, fail: 0 }', 'tap leaves out fail: 0')
  t.equal(summary('# { total: 3, pass: 1, fail: 2 }\n', 1), '# { total: 3, pass: 1, fail: 2 }')
  t.equal(summary('# { total: 2, fail: 2 }\n', 1), '# { total: 2, pass: 0, fail: 2 }', 'and pass: 0 when nothing passed')
  t.equal(summary('# { total: 10, pass: 7, todo: 1, skip: 2 }\n', 0), '# { total: 10, pass: 7, fail: 0, todo: 1, skip: 2 }', 'todo and skip are kept')
  t.equal(summary('# { total: 4, pass: 1, fail: 3 }\nlater run\n# { total: 5, pass: 5 }\n', 0), '# { total: 5, pass: 5, fail: 0 }', 'the last summary counts')
  t.equal(summary('# { total: 5, pass: 5 }\n  # Subtest: x\n  not ok 1 - expected fail: 3\n  {"fail: 9"}\n', 0), '# { total: 5, pass: 5, fail: 0 }', 'a test\'s own "fail: N" text is not the summary')
})

t.test('a failed run is never clean: one failure is added when none was counted', async (t) => {
  t.equal(summary('TypeError: boom\n', 1), '# { total: 1, pass: 0, fail: 1 }', 'a crash before any summary')
  t.equal(summary('# { total: 5, pass: 5 }\n', 1), '# { total: 6, pass: 5, fail: 1 }', 'a non-zero exit after a clean summary')
  t.equal(summary('', 0), '# { total: 0, pass: 0, fail: 0 }', 'no summary and a zero exit: nothing counted')
})

t.test('test/e2e/run.sh, test/image/run.sh, test/kubelet/run.sh and .ci/run read the summary only through test/lib/summary.sh', async (t) => {
  for (const script of ['test/e2e/run.sh', 'test/image/run.sh', 'test/kubelet/run.sh', '.ci/run']) {
    const text = readFileSync(join(ROOT, script), 'utf8')
    t.match(text, /^source test\/lib\/summary\.sh$/m, `${script} sources it`)
    t.notMatch(text, /grep[^\n]*(total|pass|fail): \[0-9\]/, `${script} parses no counts itself`)
  }
})

// .ci/run in a folder of its own: the scripts it calls are stand-ins that
// print the logs given, and exit with the statuses given.
function ci(parts: Record<'test' | 'test:e2e' | 'package:test' | 'image:test' | 'test:kubelet', [string, number]>, audit: [string, number] = ['found 0 vulnerabilities', 0], withGo = true): { status: number | null; lines: string[] } {
  const work = mkdtempSync(join(dir, 'ci-'))
  for (const sub of ['.ci', 'test/lib', 'test/e2e', 'bin']) mkdirSync(join(work, sub), { recursive: true })
  copyFileSync(join(ROOT, '.ci/run'), join(work, '.ci/run'))
  copyFileSync(SUMMARY, join(work, 'test/lib/summary.sh'))
  writeFileSync(join(work, 'test/e2e/run.sh'), '')
  const logs = join(work, 'logs')
  mkdirSync(logs)
  for (const [name, [log, code]] of Object.entries({ ...parts, audit })) {
    writeFileSync(join(logs, name), log)
    writeFileSync(join(logs, `${name}.status`), String(code))
  }
  // npm ci, npm audit, npm test, npm run <script>: the log and status of that part.
  const npm = '#!/usr/bin/env bash\n[ "$1" = ci ] && exit 0\npart=$1; [ "$1" = run ] && part=$2\ncat "$LOGS/$part"; exit "$(cat "$LOGS/$part.status")"\n'
  writeFileSync(join(work, 'bin/npm'), npm)
  chmodSync(join(work, 'bin/npm'), 0o755)
  if (withGo) {
    writeFileSync(join(work, 'bin/go'), '#!/bin/sh\nexit 0\n')
    chmodSync(join(work, 'bin/go'), 0o755)
  }
  // Without Go: only the system's folders, none of which holds a go.
  const path = withGo ? `${join(work, 'bin')}:${process.env.PATH}` : `${join(work, 'bin')}:/usr/bin:/bin`
  const r = spawnSync('bash', [join(work, '.ci/run')], { encoding: 'utf8', env: { ...process.env, PATH: path, LOGS: logs } })
  return { status: r.status, lines: r.stdout.trimEnd().split('\n') }
}

t.test('.ci/run ends with one line "N passed, N failed", each part counted from its summary', async (t) => {
  const clean = ci({
    test: ['> tsc\n# { total: 1200, pass: 1198, skip: 2 }\n', 0],
    'test:e2e': ['ok 1\n# { total: 30, pass: 30 }\n# { total: 30, pass: 30, fail: 0 }\n', 0],
    'package:test': ['# { total: 4, pass: 4 }\n', 0],
    'image:test': ['image: NOT RUN: needs root\n', 3],
    'test:kubelet': ['kubelet: NOT RUN: cannot create a network bridge here\n', 3],
  })
  t.equal(clean.status, 0)
  t.equal(clean.lines.at(-1), '1233 passed, 0 failed', 'unit, e2e, package, and the audit as one')
  t.equal(clean.lines.at(-2), 'note: (image test NOT RUN: needs root) (real-node test NOT RUN: cannot create a network bridge here)', 'the tests that could not run are said on the line before')

  const failing = ci({
    test: ['# { total: 3, fail: 3 }\n', 1],
    'test:e2e': ['  not ok 2 - expected fail: 7\n# { total: 30, pass: 28, fail: 2 }\n', 1],
    'package:test': ['npm ERR! crashed\n', 1],
    'image:test': ['# { total: 9, pass: 9 }\n', 0],
    'test:kubelet': ['# { total: 25, pass: 24, fail: 1 }\n', 1],
  }, ['1 high severity vulnerability', 1])
  t.equal(failing.status, 1)
  t.equal(failing.lines.at(-1), '61 passed, 8 failed', 'unit 0+3, e2e 28+2 (not the "fail: 7" a test printed), package 0+1 (crashed), image 9+0, real node 24+1, audit 0+1')
  t.equal(failing.lines.filter((l) => /^\d+ passed, \d+ failed$/.test(l)).length, 1, 'exactly one closing line')
})

t.test('.ci/run without Go says the e2e suite did not run, on the line before the closing line', { skip: existsSync('/usr/bin/go') || existsSync('/bin/go') ? 'a go in /usr/bin' : false }, async (t) => {
  const noGo = ci({
    test: ['# { total: 10, pass: 10 }\n', 0],
    'test:e2e': ['# { total: 30, pass: 30 }\n', 0],
    'package:test': ['# { total: 4, pass: 4 }\n', 0],
    'image:test': ['# { total: 9, pass: 9 }\n', 0],
    'test:kubelet': ['# { total: 25, pass: 25 }\n', 0],
  }, undefined, false)
  t.equal(noGo.lines.at(-1), '49 passed, 0 failed', 'unit, package, image, real node and the audit: the e2e suite counted nothing')
  t.equal(noGo.lines.at(-2), 'note: (e2e suite NOT RUN: no Go toolchain on PATH)')
})
