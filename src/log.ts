import { type Logger, pino } from 'pino'

export type { Logger }

/**
 * Structured logs. Callers put campaign, topic, partition and offset in context, never a payload.
 * Standard output by default (`riffle start`); the other CLI commands log to standard error (fd 2),
 * so that what they print on standard output (JSON, exports) stays clean.
 */
export function createLogger(level = 'info', fd: 1 | 2 = 1): Logger {
  const options = {
    level,
    base: { service: 'riffle' },
    redact: {
      paths: ['authorization', 'req.headers.authorization', 'key', 'apiKey', '*.password'],
      censor: '[redacted]',
    },
  }
  return fd === 1 ? pino(options) : pino(options, pino.destination({ fd: 2, sync: true }))
}
