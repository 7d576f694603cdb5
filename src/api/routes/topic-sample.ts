/** A live sample of any topic, for defining a stream before it exists (the UI's stream editor). */
import type { FastifyInstance } from 'fastify'
import Type from 'typebox'
import { topicProblem } from '../../definitions/validate.js'
import { riffleError } from '../../errors.js'
import { sampleTopic } from '../../kafka/sample.js'

export function topicSampleRoutes(app: FastifyInstance, deps: { brokers: () => Promise<string[]> }): void {
  app.get(
    '/api/v1/topics/:topic/sample',
    {
      schema: {
        tags: ['streams'],
        summary: 'The newest messages of a topic; commits no offset. For a defined stream, use its /sample',
        params: Type.Object({ topic: Type.String({ minLength: 1, maxLength: 249 }) }),
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 10 })),
          timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 30_000, default: 3_000 })),
        }),
      },
    },
    async (req) => {
      const { topic } = req.params as { topic: string }
      const q = req.query as { limit?: number; timeoutMs?: number }
      const problem = topicProblem(topic)
      if (problem) throw riffleError('RIFFLE_BAD_REQUEST', problem)
      const messages = await sampleTopic({
        brokers: await deps.brokers(),
        topic,
        limit: q.limit ?? 10,
        timeoutMs: q.timeoutMs ?? 3_000,
      })
      return { topic, messages }
    },
  )
}
