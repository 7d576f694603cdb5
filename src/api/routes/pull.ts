/**
 * The Pull API: the channel for web sites, apps, tills and contact centres. This is the hot path,
 * so the handlers do their own light checks instead of schema validation, serialize once, and
 * derive the ETag from the bytes they send.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import Type from 'typebox'
import type { KeyStore } from '../../auth/keys.js'
import { riffleError } from '../../errors.js'
import type { PullCatalog } from '../../pull/catalog.js'
import { checkFieldNames, keyProblem, type PullCollection, pickFields } from '../../pull/values.js'
import { requireScope, scopeCheck } from '../auth.js'

/** Most keys one `_mget` may ask for. */
export const MAX_MGET_KEYS = 1000

const JSON_UTF8 = 'application/json; charset=utf-8'

/** Browsers and apps may reuse a record for a second, then revalidate cheaply with If-None-Match. */
export const PULL_CACHE_CONTROL = 'private, max-age=1'

const PublicRecord = Type.Object({
  key: Type.String({ description: 'The record key.' }),
  updatedAt: Type.String({ format: 'date-time', description: 'When the record was last written.' }),
  fields: Type.Record(Type.String(), Type.Unknown(), {
    description: "The record's fields, typed as the collection declares them; timestamps in ISO 8601.",
  }),
})

const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }),
})

interface Params {
  collection: string
  key: string
}

function publicJson(key: string, updatedAt: string, fieldsJson: string): string {
  return `{"key":${JSON.stringify(key)},"updatedAt":"${updatedAt}","fields":${fieldsJson}}`
}

/**
 * A strong validator of the bytes sent. The body is determined by the key (the URL), the write time
 * and the fields' JSON, so the tag is the write time plus the length and a 32-bit FNV-1a hash of
 * that JSON (computed in JS: a native hash call costs more than hashing a small record here).
 */
function etagOf(updatedAtMs: number, fieldsJson: string): string {
  let h = 0x811c9dc5
  for (let i = 0; i < fieldsJson.length; i++) h = Math.imul(h ^ fieldsJson.charCodeAt(i), 0x01000193)
  return `"${updatedAtMs.toString(36)}-${fieldsJson.length.toString(36)}-${(h >>> 0).toString(36)}"`
}

function notModified(req: FastifyRequest, etag: string): boolean {
  const inm = req.headers['if-none-match']
  if (inm === undefined) return false
  if (inm === etag || inm === '*') return true
  // A list, or weak validators: compare the opaque tags.
  return inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)
}

async function collectionOf(catalog: PullCatalog, name: string): Promise<PullCollection> {
  const c = await catalog.collection(name)
  if (!c) throw riffleError('RIFFLE_UNKNOWN_COLLECTION', `collection "${name}" does not exist`)
  return c
}

function notFound(collection: string): Error {
  return riffleError('RIFFLE_NOT_FOUND', `no record with this key in collection "${collection}"`)
}

function parseFields(c: PullCollection, raw: unknown): string[] | undefined {
  if (raw === undefined || raw === '') return undefined
  if (typeof raw !== 'string')
    throw riffleError('RIFFLE_BAD_REQUEST', '`fields` must be given once, as a,b,c')
  const list = raw.split(',')
  checkFieldNames(c, list)
  return list
}

export function pullRoutes(app: FastifyInstance, deps: { keys: KeyStore; catalog: PullCatalog }): void {
  const { catalog } = deps
  const store = catalog.store
  const getJson = store.getJson?.bind(store)
  const scopeOf = (req: FastifyRequest) => `pull:read:${(req.params as Params).collection}`
  const auth = requireScope(deps.keys, scopeOf)
  const check = scopeCheck(deps.keys, scopeOf)
  const tags = ['pull']

  app.get(
    '/pull/v1/:collection/:key',
    {
      schema: {
        tags,
        summary: 'Get one record',
        description:
          'Needs the scope `pull:read:<collection>` (or `pull:read:*`). Answers 404 `RIFFLE_NOT_FOUND` when there is no record with this key, 404 `RIFFLE_UNKNOWN_COLLECTION` when the collection does not exist. Sends an ETag; `If-None-Match` gets 304 when the record has not changed. Keys are 1–256 characters.',
        params: Type.Object({ collection: Type.String(), key: Type.String() }),
        querystring: Type.Object({
          fields: Type.Optional(Type.String({ description: 'Only these fields, comma-separated: a,b,c' })),
        }),
        response: { 200: PublicRecord, 304: Type.Null(), 404: ErrorBody },
      },
      // The handler checks params and query itself: cheaper than a validator on the hot path.
      validatorCompiler: () => (data) => ({ value: data }),
      // Nothing logs per request here: skip building a child logger for each one.
      childLoggerFactory: (logger) => logger,
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const { collection, key } = req.params as Params
      // Inline rather than an onRequest hook, and without waiting when the key's verdict is cached.
      const checking = check(req, reply)
      if (checking) await checking
      const problem = keyProblem(key)
      if (problem) throw riffleError('RIFFLE_BAD_REQUEST', problem)
      const c = catalog.cached(collection) ?? (await collectionOf(catalog, collection))
      const fields = parseFields(c, (req.query as { fields?: unknown }).fields)
      let body: string
      let etag: string
      if (fields === undefined && getJson) {
        const r = await getJson(collection, key)
        if (!r) throw notFound(collection)
        body = publicJson(key, new Date(r.updatedAt).toISOString(), r.fieldsJson)
        etag = etagOf(r.updatedAt, r.fieldsJson)
      } else {
        const r = await store.get(collection, key, fields)
        if (!r) throw notFound(collection)
        const fieldsJson = JSON.stringify(r.fields)
        body = publicJson(key, r.updatedAt, fieldsJson)
        etag = etagOf(Date.parse(r.updatedAt), fieldsJson)
      }
      if (notModified(req, etag)) {
        return reply.headers({ 'cache-control': PULL_CACHE_CONTROL, etag }).code(304).send()
      }
      return reply
        .headers({ 'cache-control': PULL_CACHE_CONTROL, etag, 'content-type': JSON_UTF8 })
        .send(body)
    },
  )

  app.post(
    '/pull/v1/:collection/_mget',
    {
      onRequest: auth,
      schema: {
        tags,
        summary: `Get many records (at most ${MAX_MGET_KEYS} keys)`,
        description: `Needs the scope \`pull:read:<collection>\`. Answers \`records\` in the order of \`keys\`, with null for a key that has no record. More than ${MAX_MGET_KEYS} keys is 413 \`RIFFLE_PAYLOAD_TOO_LARGE\`.`,
        params: Type.Object({ collection: Type.String() }),
        body: Type.Object({
          keys: Type.Array(Type.String(), { description: `The keys, at most ${MAX_MGET_KEYS}.` }),
          fields: Type.Optional(Type.Array(Type.String(), { description: 'Only these fields.' })),
        }),
        response: {
          200: Type.Object({ records: Type.Array(Type.Union([PublicRecord, Type.Null()])) }),
        },
      },
    },
    async (req, reply) => {
      const { collection } = req.params as { collection: string }
      const body = req.body as { keys: string[]; fields?: string[] }
      if (body.keys.length > MAX_MGET_KEYS) {
        throw riffleError(
          'RIFFLE_PAYLOAD_TOO_LARGE',
          `_mget takes at most ${MAX_MGET_KEYS} keys per request, got ${body.keys.length}`,
        )
      }
      body.keys.forEach((k, i) => {
        const problem = keyProblem(k)
        if (problem) throw riffleError('RIFFLE_BAD_REQUEST', `keys[${i}]: ${problem}`)
      })
      const c = await collectionOf(catalog, collection)
      if (body.fields) checkFieldNames(c, body.fields)
      const records = await store.getMany(collection, body.keys)
      let out = '{"records":['
      for (let i = 0; i < records.length; i++) {
        const r = records[i]
        if (i > 0) out += ','
        out += r ? publicJson(r.key, r.updatedAt, JSON.stringify(pickFields(r.fields, body.fields))) : 'null'
      }
      out += ']}'
      reply.header('cache-control', 'private, no-store')
      return reply.type('application/json; charset=utf-8').send(out)
    },
  )
}
