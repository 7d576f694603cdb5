import type { FastifyInstance } from 'fastify'
import { collectDefaultMetrics, Registry } from 'prom-client'

export interface ReadinessCheck {
  name: string
  check: () => Promise<void>
}

export function healthRoutes(app: FastifyInstance, checks: ReadinessCheck[], registry: Registry): void {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'Answers while the process lives' } },
    async () => ({ status: 'ok' }),
  )
  app.get(
    '/readyz',
    { schema: { tags: ['health'], summary: 'Ready once every configured store answers' } },
    async (_req, reply) => {
      const results = await Promise.all(
        checks.map(async (c) => {
          try {
            await withTimeout(c.check(), 2_000)
            return { name: c.name, ok: true as const }
          } catch (e) {
            return { name: c.name, ok: false as const, error: e instanceof Error ? e.message : String(e) }
          }
        }),
      )
      const ready = results.every((r) => r.ok)
      return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: results })
    },
  )
  app.get(
    '/metrics',
    { schema: { tags: ['health'], summary: 'Prometheus metrics' } },
    async (_req, reply) => {
      return reply.type(registry.contentType).send(await registry.metrics())
    },
  )
}

export function createMetricsRegistry(): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'riffle_process_' })
  return registry
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    p.then(
      (v) => {
        clearTimeout(t)
        resolve(v)
      },
      (e) => {
        clearTimeout(t)
        reject(e)
      },
    )
  })
}
