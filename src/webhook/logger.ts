// The process's logger: pino JSON lines on stdout (fastify's own logger), the
// level from AGENT_INJECT_LOG_LEVEL. Values that could hold secrets are never
// passed to it; the redaction below is a second line of defence for request
// headers.
import pino, { type DestinationStream, type Logger } from 'pino'
import type { Settings } from '../engine/settings.ts'

export function createLogger(settings: Pick<Settings, 'logLevel'>, stream?: DestinationStream): Logger {
  const options = {
    level: settings.logLevel === 'trace' ? 'trace' : settings.logLevel,
    base: { service: 'vault-injector' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
  }
  return stream ? pino(options, stream) : pino(options)
}
