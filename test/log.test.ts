// Log lines name their level ("level":"warn"), from vault-k8s's level names.
import t from 'tap'
import { Writable } from 'node:stream'
import { createLogger } from '../src/log.ts'

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  let text = ''
  const stream = new Writable({ write: (chunk, _enc, done) => ((text += chunk.toString()), done()) })
  return { stream, lines: () => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) }
}

t.test('each line names its level', async (t) => {
  const out = capture()
  const logger = createLogger({ logLevel: 'info' }, out.stream)
  logger.debug('hidden')
  logger.info('started')
  logger.warn({ x: 1 }, 'careful')
  logger.error('broken')
  t.same(out.lines().map((l) => [l.level, l.msg]), [['info', 'started'], ['warn', 'careful'], ['error', 'broken']])
  const quiet = capture()
  createLogger({ logLevel: 'WARNING' }, quiet.stream).info('not shown')
  t.same(quiet.lines(), [], "vault-k8s's names, any case")
})
