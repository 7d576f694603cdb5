/** Dry run, trace and HTTP ingest: thin routes over the decision and ingest services. */
import type { FastifyInstance } from 'fastify'
import Type from 'typebox'
import type { KeyStore } from '../../auth/keys.js'
import { NAME_PATTERN } from '../../definitions/schema.js'
import type { DecisionService } from '../../engine/explain.js'
import { riffleError } from '../../errors.js'
import type { IngestService } from '../../streams/ingest.js'
import { requireScope } from '../auth.js'

export function decisionRoutes(admin: FastifyInstance, decisions: DecisionService): void {
  admin.post(
    '/api/v1/campaigns/:name/dry-run',
    {
      schema: {
        tags: ['campaigns'],
        summary:
          'Run a campaign on a sample event (or row): every decision step, the rendered content and the outputs that would be written; writes nothing',
        params: Type.Object({ name: Type.String({ pattern: NAME_PATTERN }) }),
        body: Type.Object(
          {
            event: Type.Optional(Type.Unknown({ description: 'A sample event of the stream, as JSON.' })),
            row: Type.Optional(
              Type.Record(Type.String(), Type.Unknown(), {
                description: 'A sample data store row (scheduled campaigns).',
              }),
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req) =>
      decisions.dryRun(
        (req.params as { name: string }).name,
        req.body as { event?: unknown; row?: Record<string, unknown> },
      ),
  )
  admin.get(
    '/api/v1/trace',
    {
      schema: {
        tags: ['campaigns'],
        summary:
          'Re-read one Kafka message and explain, per campaign on its stream, why it did or did not fire',
        querystring: Type.Object({
          topic: Type.String({ minLength: 1, maxLength: 249 }),
          partition: Type.Integer({ minimum: 0 }),
          offset: Type.String({ pattern: '^[0-9]{1,19}$' }),
        }),
      },
    },
    async (req) => {
      const q = req.query as { topic: string; partition: number; offset: string }
      return decisions.trace(q.topic, q.partition, BigInt(q.offset))
    },
  )
}

export function ingestRoutes(app: FastifyInstance, keys: KeyStore, ingest: IngestService): void {
  app.register(async (scope) => {
    // The raw bytes are what goes to Kafka: validated, never re-serialised.
    scope.removeContentTypeParser('application/json')
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) =>
      done(null, body),
    )
    scope.post(
      '/ingest/v1/:stream',
      {
        onRequest: requireScope(keys, 'ingest'),
        schema: {
          tags: ['ingest'],
          summary:
            "Validate a JSON event against the stream and produce it to the stream's topic (scope: ingest)",
          params: Type.Object({ stream: Type.String({ pattern: NAME_PATTERN }) }),
        },
      },
      async (req, reply) => {
        if (!Buffer.isBuffer(req.body))
          throw riffleError(
            'RIFFLE_BAD_REQUEST',
            'send the event as a JSON body (Content-Type: application/json)',
          )
        const r = await ingest.ingest((req.params as { stream: string }).stream, req.body)
        return reply.status(202).send(r)
      },
    )
  })
}
