/**
 * A server process for bench/pull.ts, so that the load generator and the server do not share a
 * core. `riffle`: the real app with the Pull API on the embedded store, RECORDS records loaded;
 * `ceiling`: a bare Fastify route returning a constant record. Prints `{"port", "key"}` once listening.
 */
import Fastify from 'fastify'
import { buildApp } from '../src/api/app.js'
import { createMetricsRegistry } from '../src/api/routes/health.js'
import { loadConfig } from '../src/config.js'
import { createLogger } from '../src/log.js'
import { openRiffle } from '../src/runtime.js'

const [mode, dataDir, recordsArg] = process.argv.slice(2)
const RECORDS = Number(recordsArg ?? 100_000)
const RECORD_SAMPLE = {
  key: 'c0000001',
  updatedAt: '2025-01-01T00:00:00.000Z',
  fields: { first_name: 'Ada', segment: 'gold', churn_score: 0.25, next_best_product: 'P-123' },
}

if (mode === 'ceiling') {
  const app = Fastify()
  const body = JSON.stringify(RECORD_SAMPLE)
  app.get('/pull/v1/:collection/:key', (_req, reply) => {
    reply.type('application/json; charset=utf-8').send(body)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  process.stdout.write(
    `${JSON.stringify({ port: (app.server.address() as { port: number }).port, key: '' })}\n`,
  )
} else {
  const config = loadConfig({
    RIFFLE_DATA_DIR: dataDir!,
    RIFFLE_KAFKA_BROKERS: '127.0.0.1:9',
    RIFFLE_PULLSTORE_URL: 'sqlite:',
    RIFFLE_DATABASE_URL: 'sqlite:',
  })
  const log = createLogger('silent')
  const riffle = await openRiffle(config, log)
  await riffle.defs.put(
    'collection',
    {
      name: 'profile',
      key: 'customer_id',
      fields: [
        { name: 'first_name', type: 'string' },
        { name: 'segment', type: 'string' },
        { name: 'churn_score', type: 'number' },
        { name: 'next_best_product', type: 'string' },
      ],
    },
    'bench',
    'upsert',
  )
  await riffle.pull.prepare((await riffle.defs.snapshot()).definitions.collections)
  for (let i = 0; i < RECORDS; i += 10_000) {
    const writes = []
    for (let j = i; j < Math.min(RECORDS, i + 10_000); j++) {
      writes.push({
        key: `c${String(j).padStart(7, '0')}`,
        set: { ...RECORD_SAMPLE.fields, churn_score: (j % 100) / 100 },
        writer: 'load:bench',
      })
    }
    await riffle.pull.write('profile', writes)
  }
  const { key } = await riffle.keys.create(['pull:read:profile'], 'bench')
  const app = await buildApp({
    log,
    defs: riffle.defs,
    keys: riffle.keys,
    metrics: createMetricsRegistry(),
    readiness: [],
    brokers: async () => [],
    version: 'bench',
    pull: riffle.pull,
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  process.stdout.write(`${JSON.stringify({ port: (app.server.address() as { port: number }).port, key })}\n`)
}

// Exit cleanly on a signal, so that --cpu-prof and the like can write their output.
for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => process.exit(0))
