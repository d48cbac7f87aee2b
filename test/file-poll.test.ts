// One "poll files, keep the last good version" for certificates and policy.
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FilePoll } from '../src/file-poll.ts'

t.test('a version that does not load keeps the last good one, reported once per state of the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'file-poll-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'n.json')
  writeFileSync(file, '{"n":1}')
  const loaded: number[] = []
  const failures: string[] = []
  const poll = new FilePoll<number>({
    files: [file],
    load: () => (JSON.parse(readFileSync(file, 'utf8')) as { n: number }).n,
    onLoaded: (value) => loaded.push(value),
    onFailed: (error) => failures.push(error.message),
  })
  t.equal(poll.poll(), true, 'first load')
  t.equal(poll.poll(), false, 'unchanged files are not read again')
  writeFileSync(file, '{"n":')
  t.equal(poll.poll(), false)
  t.equal(poll.poll(), false)
  t.equal(failures.length, 1, 'one report for one broken state')
  t.equal(poll.current(), 1, 'the last good version stays')
  writeFileSync(file, '{"n":22}')
  t.equal(poll.poll(), true)
  t.same(loaded, [1, 22])
  t.equal(poll.current(), 22)
})
