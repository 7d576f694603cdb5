/**
 * Every error Riffle raises carries a stable code, an HTTP status where one applies, and whether a
 * retry can help. Transports and the consumer loop decide from these flags, never from message text.
 */
export interface ErrorSpec {
  status: number
  retryable: boolean
  summary: string
}

export const ERRORS = {
  RIFFLE_BAD_REQUEST: { status: 400, retryable: false, summary: 'The request is malformed' },
  RIFFLE_INVALID_JSON: { status: 400, retryable: false, summary: 'The body or file is not valid JSON' },
  RIFFLE_INVALID_YAML: { status: 400, retryable: false, summary: 'The file is not valid YAML' },
  RIFFLE_INVALID_DEFINITION: { status: 422, retryable: false, summary: 'A definition is invalid' },
  RIFFLE_BAD_TIME_RANGE: { status: 400, retryable: false, summary: 'A time or time range is invalid' },
  RIFFLE_BAD_CURSOR: { status: 400, retryable: false, summary: 'The paging cursor is invalid' },
  RIFFLE_UNKNOWN_CONSUMER: {
    status: 404,
    retryable: false,
    summary: 'The history export consumer is not registered',
  },
  RIFFLE_UNAUTHORIZED: { status: 401, retryable: false, summary: 'An API key is required' },
  RIFFLE_FORBIDDEN: { status: 403, retryable: false, summary: 'The API key lacks the scope' },
  RIFFLE_NOT_FOUND: { status: 404, retryable: false, summary: 'Not found' },
  RIFFLE_UNKNOWN_COLLECTION: { status: 404, retryable: false, summary: 'No such pull collection' },
  RIFFLE_CONFLICT: { status: 409, retryable: false, summary: 'Conflicts with the current state' },
  RIFFLE_PAYLOAD_TOO_LARGE: { status: 413, retryable: false, summary: 'The request body is too large' },
  RIFFLE_CONFIG: { status: 500, retryable: false, summary: 'A setting is invalid' },
  RIFFLE_KAFKA_UNAVAILABLE: { status: 503, retryable: true, summary: 'Kafka cannot be reached' },
  RIFFLE_STORE_UNAVAILABLE: { status: 503, retryable: true, summary: 'A store cannot be reached' },
  RIFFLE_TIMEOUT: { status: 504, retryable: true, summary: 'The operation timed out' },
  RIFFLE_INTERNAL: { status: 500, retryable: false, summary: 'Internal error' },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

/** One problem found in a definition, located by file, path and (where known) line and column. */
export interface Issue {
  /** JSON-pointer-like path inside the definitions, e.g. `campaigns[0].where`. */
  path: string
  message: string
  file?: string
  line?: number
  column?: number
  /**
   * Where in the expression or template (the text at `path`) the problem is, when the CEL or
   * Liquid compiler says: character offsets `start` (0-based) to `end` (exclusive; equal to `start`
   * at the end of the text), and the `line` and `column` (1-based) of `start` in that text.
   */
  span?: TextSpan
}

export interface TextSpan {
  start: number
  end: number
  line: number
  column: number
}

/** A span of `text` from `start` to `end` (clamped to the text), with the line and column of `start`. */
export function textSpan(text: string, start: number, end = start): TextSpan {
  const s = Math.max(0, Math.min(start, text.length))
  const e = Math.max(s, Math.min(end, text.length))
  const before = text.slice(0, s)
  const line = before.split('\n').length
  const column = s - (before.lastIndexOf('\n') + 1) + 1
  return { start: s, end: e, line, column }
}

export class RiffleError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly retryable: boolean
  readonly issues: Issue[] | undefined

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; issues?: Issue[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'RiffleError'
    this.code = code
    this.status = ERRORS[code].status
    this.retryable = ERRORS[code].retryable
    this.issues = options.issues
  }

  toJSON(): { error: { code: ErrorCode; message: string; issues?: Issue[] } } {
    return {
      error: { code: this.code, message: this.message, ...(this.issues ? { issues: this.issues } : {}) },
    }
  }
}

export function riffleError(
  code: ErrorCode,
  message: string,
  options?: { cause?: unknown; issues?: Issue[] },
) {
  return new RiffleError(code, message, options)
}

export function isRiffleError(e: unknown): e is RiffleError {
  return e instanceof RiffleError
}

/** Formats issues the way a person reads them in a terminal: `file:line:col path: message`. */
export function formatIssues(issues: Issue[]): string {
  return issues
    .map((i) => {
      const where = [i.file, i.line, i.column].filter((x) => x !== undefined).join(':')
      return `${where ? `${where} ` : ''}${i.path}: ${i.message}`
    })
    .join('\n')
}
