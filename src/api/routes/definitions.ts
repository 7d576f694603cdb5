/** Admin CRUD for streams, collections and campaigns; activate and pause; versions; apply and export. */
import type { FastifyInstance } from 'fastify'
import Type, { type TSchema } from 'typebox'
import {
  Campaign,
  Collection,
  DataStoreSettings,
  type Kind,
  NAME_PATTERN,
  Stream,
} from '../../definitions/schema.js'
import type { DefinitionsService } from '../../definitions/service.js'
import { objectSource, parseDefinitionsText } from '../../definitions/source.js'
import type { StoredDefinition } from '../../definitions/store.js'
import { riffleError } from '../../errors.js'
import { actorOf } from '../auth.js'

const NameParams = Type.Object({ name: Type.String({ pattern: NAME_PATTERN }) })
const VersionParams = Type.Object({
  name: Type.String({ pattern: NAME_PATTERN }),
  version: Type.Integer({ minimum: 1 }),
})

function record(d: StoredDefinition) {
  return {
    kind: d.kind,
    name: d.name,
    version: d.version,
    updatedAt: d.createdAt,
    updatedBy: d.createdBy,
    definition: d.spec,
  }
}

const Record_ = (definition: TSchema) =>
  Type.Object({
    kind: Type.String(),
    name: Type.String(),
    version: Type.Integer({ description: 'Increases with every change.' }),
    updatedAt: Type.String({ format: 'date-time' }),
    updatedBy: Type.String({ description: 'The key (or CLI user) that made this version.' }),
    definition: Type.Union([definition, Type.Null()]),
  })

const RESOURCES: Array<{ kind: Exclude<Kind, 'datastore'>; path: string; schema: TSchema; tag: string }> = [
  { kind: 'stream', path: 'streams', schema: Stream, tag: 'streams' },
  { kind: 'collection', path: 'collections', schema: Collection, tag: 'collections' },
  { kind: 'campaign', path: 'campaigns', schema: Campaign, tag: 'campaigns' },
]

export function definitionRoutes(app: FastifyInstance, defs: DefinitionsService): void {
  for (const r of RESOURCES) {
    const one = Record_(r.schema)
    const tags = [r.tag]
    app.get(
      `/api/v1/${r.path}`,
      {
        schema: {
          tags,
          summary: `List ${r.path}`,
          response: { 200: Type.Object({ items: Type.Array(one) }) },
        },
      },
      async () => ({
        items: (await defs.list(r.kind)).map(record),
      }),
    )
    app.post(
      `/api/v1/${r.path}`,
      { schema: { tags, summary: `Create a ${r.kind}`, body: r.schema, response: { 201: one } } },
      async (req, reply) => {
        const spec = r.kind === 'campaign' ? { status: 'draft', ...(req.body as object) } : req.body
        reply.status(201)
        return record(await defs.put(r.kind, spec, actorOf(req), 'create'))
      },
    )
    app.get(
      `/api/v1/${r.path}/:name`,
      { schema: { tags, summary: `Get a ${r.kind}`, params: NameParams, response: { 200: one } } },
      async (req) => record(await defs.get(r.kind, (req.params as { name: string }).name)),
    )
    app.put(
      `/api/v1/${r.path}/:name`,
      {
        schema: {
          tags,
          summary: `Create or replace a ${r.kind}`,
          params: NameParams,
          body: r.schema,
          response: { 200: one },
        },
      },
      async (req) => {
        const { name } = req.params as { name: string }
        const body = req.body as { name: string; status?: string }
        if (body.name !== name) {
          throw riffleError(
            'RIFFLE_BAD_REQUEST',
            `the body's name "${body.name}" differs from the path's "${name}"; renaming is not supported`,
          )
        }
        let spec: unknown = body
        if (r.kind === 'campaign' && body.status === undefined) {
          const prev = await defs.store.get('campaign', name)
          spec = { ...body, status: (prev?.spec as { status?: string } | undefined)?.status ?? 'draft' }
        }
        return record(await defs.put(r.kind, spec, actorOf(req), 'upsert'))
      },
    )
    app.delete(
      `/api/v1/${r.path}/:name`,
      { schema: { tags, summary: `Delete a ${r.kind}`, params: NameParams } },
      async (req, reply) => {
        await defs.remove(r.kind, (req.params as { name: string }).name, actorOf(req))
        return reply.status(204).send()
      },
    )
    app.get(
      `/api/v1/${r.path}/:name/versions`,
      {
        schema: {
          tags,
          summary: `Every version of a ${r.kind}, newest first`,
          params: NameParams,
          response: { 200: Type.Object({ items: Type.Array(one) }) },
        },
      },
      async (req) => {
        const { name } = req.params as { name: string }
        const items = await defs.store.versions(r.kind, name)
        if (items.length === 0) throw riffleError('RIFFLE_NOT_FOUND', `${r.kind} "${name}" has no versions`)
        return { items: items.map(record) }
      },
    )
    app.get(
      `/api/v1/${r.path}/:name/versions/:version`,
      {
        schema: {
          tags,
          summary: `One version of a ${r.kind}`,
          params: VersionParams,
          response: { 200: one },
        },
      },
      async (req) => {
        const { name, version } = req.params as { name: string; version: number }
        const d = await defs.store.version(r.kind, name, version)
        if (!d) throw riffleError('RIFFLE_NOT_FOUND', `${r.kind} "${name}" has no version ${version}`)
        return record(d)
      },
    )
  }

  const campaignRecord = Record_(Campaign)
  for (const [action, status] of [
    ['activate', 'active'],
    ['pause', 'paused'],
    ['archive', 'archived'],
  ] as const) {
    app.post(
      `/api/v1/campaigns/:name/${action}`,
      {
        schema: {
          tags: ['campaigns'],
          summary: `Set the campaign's status to ${status}`,
          params: NameParams,
          response: { 200: campaignRecord },
        },
      },
      async (req) =>
        record(await defs.setStatus((req.params as { name: string }).name, status, actorOf(req))),
    )
  }

  app.get(
    '/api/v1/datastore',
    { schema: { tags: ['datastore'], summary: 'Data store settings' } },
    async () => {
      const d = await defs.store.get('datastore', 'default')
      return d ? record(d) : { kind: 'datastore', name: 'default', version: 0, definition: null }
    },
  )
  app.put(
    '/api/v1/datastore',
    { schema: { tags: ['datastore'], summary: 'Replace the data store settings', body: DataStoreSettings } },
    async (req) => record(await defs.put('datastore', req.body, actorOf(req), 'upsert')),
  )

  // The whole definitions file: export and apply, as YAML or JSON.
  app.get(
    '/api/v1/definitions',
    {
      schema: {
        tags: ['definitions'],
        summary: 'Export every definition (JSON, or YAML with Accept: application/yaml)',
      },
    },
    async (req, reply) => {
      if (/yaml/.test(req.headers.accept ?? ''))
        return reply.type('application/yaml').send(await defs.exportYaml())
      return defs.exportDefinitions()
    },
  )
  app.post(
    '/api/v1/definitions/apply',
    {
      schema: {
        tags: ['definitions'],
        summary:
          'Apply a definitions file atomically (JSON body, or YAML with Content-Type: application/yaml)',
        querystring: Type.Object({
          prune: Type.Optional(Type.Boolean({ description: 'Delete what the file no longer has.' })),
          dryRun: Type.Optional(Type.Boolean({ description: 'Validate and report, change nothing.' })),
        }),
      },
    },
    async (req) => {
      const q = req.query as { prune?: boolean; dryRun?: boolean }
      const source = typeof req.body === 'string' ? parseDefinitionsText(req.body) : objectSource(req.body)
      return defs.apply(source, { actor: actorOf(req), prune: q.prune ?? false, dryRun: q.dryRun ?? false })
    },
  )
  app.post(
    '/api/v1/definitions/validate',
    {
      schema: {
        tags: ['definitions'],
        summary: 'Validate a definitions file against the applied definitions; changes nothing',
      },
    },
    async (req) => {
      const source = typeof req.body === 'string' ? parseDefinitionsText(req.body) : objectSource(req.body)
      const { issues } = await defs.validate(source)
      return { valid: issues.length === 0, issues }
    },
  )
}
