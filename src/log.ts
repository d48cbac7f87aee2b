// The process's logger: pino JSON lines on stdout (fastify's own logger), the
// level from AGENT_INJECT_LOG_LEVEL. Values that could hold secrets are never
// passed to it; the redaction below is a second line of defence for request
// headers.
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino'
import type { Settings } from './settings.ts'
import { pinoLevel } from './webhook/settings.ts'

// What the rest of the code needs from a logger (pino's satisfies it; tests
// pass their own).
export interface Logger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export function createLogger(settings: Pick<Settings, 'logLevel'>, stream?: DestinationStream): PinoLogger {
  const options = {
    level: pinoLevel(settings.logLevel),
    // "level":"warn", not pino's 40: what log queries and people read.
    formatters: { level: (label: string) => ({ level: label }) },
    base: { service: 'vault-injector' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
  }
  return stream ? pino(options, stream) : pino(options)
}
