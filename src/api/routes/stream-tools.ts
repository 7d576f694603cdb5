/** Tools for administrators defining streams: a live sample of a topic and field inference. */
import type { FastifyInstance } from 'fastify'
import Type from 'typebox'
import { NAME_PATTERN, type Stream } from '../../definitions/schema.js'
import type { DefinitionsService } from '../../definitions/service.js'
import { topicProblem } from '../../definitions/validate.js'
import { riffleError } from '../../errors.js'
import { sampleTopic } from '../../kafka/sample.js'
import { inferFields } from '../../streams/infer.js'

export interface StreamToolsDeps {
  defs: DefinitionsService
  /** The Kafka brokers, resolved lazily (the local broker may still be starting). */
  brokers: () => Promise<string[]>
}

const MAX_SAMPLE = 500

export function streamToolRoutes(app: FastifyInstance, deps: StreamToolsDeps): void {
  app.get(
    '/api/v1/streams/:name/sample',
    {
      schema: {
        tags: ['streams'],
        summary: "The newest messages of the stream's topic; commits no offset",
        params: Type.Object({ name: Type.String({ pattern: NAME_PATTERN }) }),
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_SAMPLE, default: 10 })),
          timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 30_000, default: 3_000 })),
        }),
      },
    },
    async (req) => {
      const { name } = req.params as { name: string }
      const q = req.query as { limit?: number; timeoutMs?: number }
      const stream = (await deps.defs.get('stream', name)).spec as Stream
      const messages = await sampleTopic({
        brokers: await deps.brokers(),
        topic: stream.topic,
        limit: q.limit ?? 10,
        timeoutMs: q.timeoutMs ?? 3_000,
      })
      return { stream: name, topic: stream.topic, messages }
    },
  )

  app.post(
    '/api/v1/streams/infer',
    {
      schema: {
        tags: ['streams'],
        summary: 'Propose a typed field list from sampled JSON messages (of a topic, or given in the body)',
        body: Type.Object(
          {
            topic: Type.Optional(Type.String({ minLength: 1, maxLength: 249 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_SAMPLE, default: 100 })),
            messages: Type.Optional(Type.Array(Type.Unknown(), { maxItems: 10_000 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      const body = req.body as { topic?: string; limit?: number; messages?: unknown[] }
      if ((body.topic === undefined) === (body.messages === undefined)) {
        throw riffleError(
          'RIFFLE_BAD_REQUEST',
          'give either `topic` (to sample) or `messages` (already sampled)',
        )
      }
      let values: unknown[]
      if (body.topic !== undefined) {
        const problem = topicProblem(body.topic)
        if (problem) throw riffleError('RIFFLE_BAD_REQUEST', problem)
        const sampled = await sampleTopic({
          brokers: await deps.brokers(),
          topic: body.topic,
          limit: body.limit ?? 100,
        })
        values = sampled.map((m) => (m.json === undefined ? m.value : m.json))
      } else values = body.messages ?? []
      return { topic: body.topic, ...inferFields(values) }
    },
  )
}
