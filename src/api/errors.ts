import type { FastifyError, FastifyInstance } from 'fastify'
import { type ErrorCode, isRiffleError, type RiffleError, riffleError } from '../errors.js'
import { jsonSyntaxError } from '../json-syntax.js'
import type { Logger } from '../log.js'

/** RIFFLE_INVALID_JSON for a request body, naming the line and column of the first error. */
export function invalidJsonBody(body: string): RiffleError {
  const e = jsonSyntaxError(body)
  if (!e) {
    return riffleError(
      'RIFFLE_INVALID_JSON',
      'the request body is not acceptable JSON: it has a "__proto__" or "constructor.prototype" key',
    )
  }
  return riffleError(
    'RIFFLE_INVALID_JSON',
    `the request body is not valid JSON: ${e.message} at line ${e.line}, column ${e.column}`,
    { issues: [{ path: '(document)', message: e.message, line: e.line, column: e.column }] },
  )
}

/** Maps every error to `{"error": {"code": "RIFFLE_…", "message": "…"}}` with a fitting status. */
export function installErrorHandling(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError | RiffleError, req, reply) => {
    let e: RiffleError
    if (isRiffleError(err)) e = err
    else if (
      (err as FastifyError).code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
      (err instanceof SyntaxError && (err as FastifyError).statusCode === 400)
    ) {
      e = riffleError('RIFFLE_INVALID_JSON', `the request body is not valid JSON: ${err.message}`)
    } else if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      e = riffleError('RIFFLE_PAYLOAD_TOO_LARGE', err.message)
    } else if ((err as FastifyError).validation) {
      e = riffleError('RIFFLE_BAD_REQUEST', err.message)
    } else if ((err as FastifyError).statusCode && (err as FastifyError).statusCode! < 500) {
      const status = (err as FastifyError).statusCode!
      const code: ErrorCode =
        status === 404
          ? 'RIFFLE_NOT_FOUND'
          : status === 413
            ? 'RIFFLE_PAYLOAD_TOO_LARGE'
            : 'RIFFLE_BAD_REQUEST'
      e = riffleError(code, err.message)
    } else {
      log.error({ err, url: req.url, method: req.method }, 'request failed')
      e = riffleError('RIFFLE_INTERNAL', 'internal error; see the server log')
    }
    if (e.status >= 500 && e.code !== 'RIFFLE_INTERNAL') log.warn({ code: e.code, url: req.url }, e.message)
    if (e.retryable) reply.header('retry-after', '1')
    return reply.status(e.status).send(e.toJSON())
  })
  app.setNotFoundHandler((req, reply) => {
    const e = riffleError('RIFFLE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)
    return reply.status(404).send(e.toJSON())
  })
}
