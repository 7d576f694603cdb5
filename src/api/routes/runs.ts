/** Scheduled-campaign runs, the data store schema and data store loads over HTTP. */
import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { FastifyInstance } from 'fastify'
import Type from 'typebox'
import { type DataStore, fileFormat, quoteTable } from '../../datastore/store.js'
import { isRiffleError, riffleError } from '../../errors.js'
import type { Scheduler } from '../../scheduler/scheduler.js'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T, description: string) =>
  Type.Union([t, Type.Null()], { description })

export const RunRecordSchema = Type.Object({
  id: Type.String({ description: 'The run id; part of every activation id of the run.' }),
  campaign: Type.String(),
  campaignVersion: Type.Integer(),
  trigger: Type.String({ description: 'manual, schedule or catch-up.' }),
  scheduledFor: Nullable(Type.Number(), 'The scheduled time (epoch ms); null for manual runs.'),
  status: Type.String({ description: 'running, succeeded, failed or skipped.' }),
  owner: Type.String({ description: 'The process that runs it.' }),
  createdAt: Type.Number(),
  startedAt: Nullable(Type.Number(), 'Epoch ms.'),
  endedAt: Nullable(Type.Number(), 'Epoch ms.'),
  rowsSelected: Nullable(Type.Number(), 'Rows the audience selected.'),
  rowsDone: Type.Number({ description: 'Rows of completed batches (progress).' }),
  batchesDone: Type.Integer(),
  cursor: Nullable(Type.Union([Type.String(), Type.Number()]), 'Key of the last completed row.'),
  activations: Type.Record(Type.String(), Type.Number(), { description: 'Activations per status.' }),
  outputs: Type.Record(Type.String(), Type.Number(), { description: 'Outputs per channel:status.' }),
  errors: Type.Array(Type.String()),
  message: Nullable(Type.String(), 'Why it was skipped, or how it ended.'),
})

const TableSchema = Type.Object({
  name: Type.String(),
  columns: Type.Array(
    Type.Object({
      name: Type.String(),
      type: Type.String({ description: 'The backend type name.' }),
      kind: Type.String({ description: 'integer, number, string, boolean, timestamp or other.' }),
    }),
  ),
})

export function runRoutes(
  app: FastifyInstance,
  deps: { scheduler: Scheduler; datastore: DataStore; uploadDir?: string | undefined },
): void {
  app.get(
    '/api/v1/runs',
    {
      schema: {
        tags: ['runs'],
        summary: 'Runs of scheduled and manual campaigns, newest first',
        querystring: Type.Object({
          campaign: Type.Optional(Type.String({ minLength: 1 })),
          status: Type.Optional(Type.String({ minLength: 1 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
        }),
        response: { 200: Type.Object({ items: Type.Array(RunRecordSchema) }) },
      },
    },
    async (req) => {
      const q = req.query as { campaign?: string; status?: string; limit?: number }
      return { items: await deps.scheduler.runs.list(q) }
    },
  )
  app.get(
    '/api/v1/runs/:id',
    {
      schema: {
        tags: ['runs'],
        summary: 'One run, with its progress',
        params: Type.Object({ id: Type.String({ minLength: 1 }) }),
        response: { 200: RunRecordSchema },
      },
    },
    async (req) => deps.scheduler.runs.get((req.params as { id: string }).id),
  )
  app.post(
    '/api/v1/campaigns/:name/run',
    {
      schema: {
        tags: ['runs'],
        summary: 'Start a run of a scheduled or manual campaign now; 409 while one is going',
        params: Type.Object({ name: Type.String({ minLength: 1 }) }),
        response: { 202: RunRecordSchema },
      },
    },
    async (req, reply) => {
      const { run } = await deps.scheduler.runNow((req.params as { name: string }).name)
      return reply.code(202).send(run)
    },
  )
  app.get(
    '/api/v1/datastore/tables',
    {
      schema: {
        tags: ['datastore'],
        summary: 'Tables of the data store, with columns and types (fields for the designer)',
        response: { 200: Type.Object({ items: Type.Array(TableSchema) }) },
      },
    },
    async () => ({ items: await deps.datastore.tables() }),
  )
  const uploadDir = deps.uploadDir
  if (!uploadDir) return
  // The file arrives as the request body and is streamed to disk, never held in memory.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload))
  app.post(
    '/api/v1/datastore/tables/:table/load',
    {
      bodyLimit: Number.MAX_SAFE_INTEGER,
      schema: {
        tags: ['datastore'],
        summary:
          'Load a CSV or Parquet file, sent as the body (application/octet-stream), into a table; what `riffle datastore load` uses while `riffle start` holds the DuckDB file',
        params: Type.Object({ table: Type.String({ minLength: 1 }) }),
        querystring: Type.Object({
          file: Type.String({
            minLength: 1,
            description: 'The file name; its extension (.csv, .tsv, .csv.gz, .parquet) gives the format.',
          }),
          append: Type.Optional(Type.Boolean({ description: 'Append instead of replacing the table.' })),
        }),
        response: { 200: Type.Object({ table: Type.String(), rows: Type.Number() }) },
      },
    },
    async (req) => {
      const { table } = req.params as { table: string }
      const q = req.query as { file: string; append?: boolean }
      quoteTable(table)
      const name = basename(q.file).replace(/[^A-Za-z0-9._-]/g, '_')
      fileFormat(name)
      if (!req.body || typeof (req.body as Readable).pipe !== 'function')
        throw riffleError(
          'RIFFLE_BAD_REQUEST',
          'send the file as the request body with Content-Type: application/octet-stream',
        )
      await mkdir(uploadDir, { recursive: true })
      const path = join(uploadDir, `${randomUUID()}-${name}`)
      try {
        await pipeline(req.body as Readable, createWriteStream(path))
        try {
          const { rows } = await deps.datastore.load(table, path, { replace: !q.append })
          return { table, rows }
        } catch (e) {
          // name the file as the client knows it, not the upload's temporary path
          if (isRiffleError(e)) throw riffleError(e.code, e.message.split(path).join(q.file), { cause: e })
          throw e
        }
      } finally {
        await rm(path, { force: true })
      }
    },
  )
}
