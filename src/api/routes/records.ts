/** Admin access to pull records: browse a collection page by page, look up, replace, patch, delete. */
import type { FastifyInstance } from 'fastify'
import Type from 'typebox'
import { NAME_PATTERN } from '../../definitions/schema.js'
import { riffleError } from '../../errors.js'
import type { PullCatalog } from '../../pull/catalog.js'
import type { PullRecord } from '../../pull/store.js'
import { keyProblem, type PullCollection } from '../../pull/values.js'

const Params = Type.Object({ collection: Type.String({ pattern: NAME_PATTERN }) })
const KeyParams = Type.Object({
  collection: Type.String({ pattern: NAME_PATTERN }),
  key: Type.String({ description: 'The record key, 1–256 characters.' }),
})

const AdminRecord = Type.Object({
  key: Type.String(),
  fields: Type.Record(Type.String(), Type.Unknown()),
  updatedAt: Type.String({ format: 'date-time' }),
  writer: Type.String({
    description: 'Who wrote it last: campaign:<name>@<version>, load:<id>, admin:<key id>.',
  }),
  eventTime: Type.Optional(
    Type.Integer({ description: 'Event time of the last write that had one (epoch ms).' }),
  ),
})

const FieldsBody = Type.Object(
  {
    fields: Type.Record(Type.String(), Type.Unknown(), {
      description:
        'Field values, checked against the collection’s declared types. In PATCH, null removes a field.',
    }),
  },
  // A record as GET returns it can be sent back: key, updatedAt, writer and eventTime are ignored.
  { additionalProperties: true },
)

function checkedKey(key: string): string {
  const problem = keyProblem(key)
  if (problem) throw riffleError('RIFFLE_BAD_REQUEST', problem)
  return key
}

export function recordRoutes(app: FastifyInstance, catalog: PullCatalog): void {
  const store = catalog.store
  const tags = ['collections']
  const collectionOf = async (name: string): Promise<PullCollection> => {
    const c = await catalog.collection(name)
    if (!c) throw riffleError('RIFFLE_UNKNOWN_COLLECTION', `collection "${name}" does not exist`)
    return c
  }
  const writer = (req: { principal?: { keyId: string } }) => `admin:${req.principal?.keyId ?? 'unknown'}`
  const found = async (collection: string, key: string): Promise<PullRecord> => {
    const r = await store.get(collection, key)
    if (!r) throw riffleError('RIFFLE_NOT_FOUND', `no record with this key in collection "${collection}"`)
    return r
  }

  app.get(
    '/api/v1/collections/:collection/records',
    {
      schema: {
        tags,
        summary: 'Browse records in key order, a page at a time',
        params: Params,
        querystring: Type.Object({
          after: Type.Optional(Type.String({ description: 'The `next` of the previous page.' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Default 50.' })),
        }),
        response: {
          200: Type.Object({
            items: Type.Array(AdminRecord),
            next: Type.Optional(
              Type.String({ description: 'Pass as `after` for the next page; absent at the end.' }),
            ),
          }),
        },
      },
    },
    async (req) => {
      const { collection } = req.params as { collection: string }
      const q = req.query as { after?: string; limit?: number }
      await collectionOf(collection)
      const page = await store.scan(collection, { after: q.after, limit: q.limit ?? 50 })
      return { items: page.records, ...(page.next === undefined ? {} : { next: page.next }) }
    },
  )

  app.get(
    '/api/v1/collections/:collection/records/:key',
    {
      schema: {
        tags,
        summary: 'Look up one record, with its metadata',
        params: KeyParams,
        response: { 200: AdminRecord },
      },
    },
    async (req) => {
      const { collection, key } = req.params as { collection: string; key: string }
      await collectionOf(collection)
      return found(collection, checkedKey(key))
    },
  )

  app.put(
    '/api/v1/collections/:collection/records/:key',
    {
      schema: {
        tags,
        summary: 'Create or replace a record',
        description: 'Fields left out are removed.',
        params: KeyParams,
        body: FieldsBody,
        response: { 200: AdminRecord },
      },
    },
    async (req) => {
      const { collection, key } = req.params as { collection: string; key: string }
      const c = await collectionOf(collection)
      const { fields } = req.body as { fields: Record<string, unknown> }
      const unset = [...c.fields.keys()].filter((f) => fields[f] === undefined || fields[f] === null)
      const set = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null))
      await store.write(collection, [{ key: checkedKey(key), set, unset, writer: writer(req) }])
      return found(collection, key)
    },
  )

  app.patch(
    '/api/v1/collections/:collection/records/:key',
    {
      schema: {
        tags,
        summary: 'Set some fields of a record (a merge; null removes a field)',
        description: 'Creates the record when it does not exist.',
        params: KeyParams,
        body: FieldsBody,
        response: { 200: AdminRecord },
      },
    },
    async (req) => {
      const { collection, key } = req.params as { collection: string; key: string }
      await collectionOf(collection)
      const { fields } = req.body as { fields: Record<string, unknown> }
      await store.write(collection, [{ key: checkedKey(key), set: fields, writer: writer(req) }])
      return found(collection, key)
    },
  )

  app.delete(
    '/api/v1/collections/:collection/records/:key',
    { schema: { tags, summary: 'Delete a record', params: KeyParams } },
    async (req, reply) => {
      const { collection, key } = req.params as { collection: string; key: string }
      await collectionOf(collection)
      const r = await store.write(collection, [{ key: checkedKey(key), delete: true, writer: writer(req) }])
      if (r.applied === 0)
        throw riffleError('RIFFLE_NOT_FOUND', `no record with this key in collection "${collection}"`)
      return reply.status(204).send()
    },
  )
}
