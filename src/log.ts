import { type Logger, pino } from 'pino'

export type { Logger }

/** Structured logs. Callers put campaign, topic, partition and offset in context, never a payload. */
export function createLogger(level = 'info'): Logger {
  return pino({
    level,
    base: { service: 'riffle' },
    redact: {
      paths: ['authorization', 'req.headers.authorization', 'key', 'apiKey', '*.password'],
      censor: '[redacted]',
    },
  })
}
