import type { FastifySchemaCompiler } from 'fastify'
import type { TSchema } from 'typebox'
import { Value } from 'typebox/value'
import { formatPath } from '../definitions/source.js'
import { structuralIssues } from '../definitions/structure.js'
import { riffleError } from '../errors.js'

/**
 * Validates requests with the same TypeBox schemas and the same messages as the definitions file.
 * Query strings and path parameters are converted to their declared types first.
 */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart, url }) => {
  const definitionBody =
    httpPart === 'body' && /^\/api\/v1\/(streams|collections|campaigns|datastore)\b/.test(url)
  return (data: unknown) => {
    const value = httpPart === 'querystring' || httpPart === 'params' ? Value.Convert(schema, data) : data
    const issues = structuralIssues(schema, value)
    if (issues.length === 0) return { value }
    const list = issues.map((i) => ({ path: formatPath(i.path), message: i.message }))
    const code = definitionBody ? 'RIFFLE_INVALID_DEFINITION' : 'RIFFLE_BAD_REQUEST'
    const where = httpPart === 'querystring' ? 'query' : (httpPart ?? 'request')
    return {
      error: riffleError(code, `invalid ${where}: ${list.map((i) => `${i.path}: ${i.message}`).join('; ')}`, {
        issues: list,
      }),
    }
  }
}
