import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { loadConfig } from '../../src/config.js'
import { parseDefinitionsText } from '../../src/definitions/source.js'
import { createLogger } from '../../src/log.js'
import { openRiffle } from '../../src/runtime.js'
import { freshPostgresDatabase, kafkaBrokers, serviceUrl, tempDir, uniqueName } from '../helpers.js'
import { allActivations, createTopic, produce, readTopic, waitFor } from './harness.js'
import { type RiffleProcess, spawnRiffle } from './process.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('two engine processes in one consumer group (PostgreSQL + Redis)', () => {
  const tmp = tempDir('riffle-rebalance-')
  const procs: RiffleProcess[] = []
  let dropDb: (() => Promise<void>) | undefined
  after(async () => {
    for (const p of procs) await p.kill()
    await dropDb?.()
    tmp.cleanup()
  })

  it('share the partitions; rebalances as processes join and leave lose and duplicate nothing', async () => {
    const topic = uniqueName('rb.events')
    const out = uniqueName('rb.offers')
    const collection = uniqueName('rbcol').replace(/-/g, '_')
    await createTopic(topic, 4)
    const pg = await freshPostgresDatabase()
    dropDb = pg.drop
    const base = {
      RIFFLE_DATABASE_URL: pg.url,
      RIFFLE_PULLSTORE_URL: serviceUrl('RIFFLE_REDIS_URL'),
      RIFFLE_KAFKA_BROKERS: kafkaBrokers().join(','),
      RIFFLE_ENGINE_GROUP: uniqueName('rb-group'),
      RIFFLE_ENGINE_BATCH: '100',
      RIFFLE_ENGINE_SESSION_TIMEOUT_MS: '6000',
    }
    const env = (name: string) => ({
      ...base,
      RIFFLE_DATA_DIR: join(tmp.dir, name),
      RIFFLE_ENGINE_ID: uniqueName(name),
    })
    const riffle = await openRiffle(loadConfig(env('admin')), createLogger('silent'))
    await riffle.defs.apply(
      parseDefinitionsText(`
streams:
  - name: events
    topic: ${topic}
    key: customer_id
    fields: [ { name: customer_id, type: string, required: true }, { name: n, type: integer, required: true } ]
collections:
  - name: ${collection}
    key: customer_id
    fields: [ { name: last_n, type: integer } ]
campaigns:
  - name: echo
    trigger: { stream: events }
    controls: { frequency: { max: 1000000, per: 1d } }
    content: { n: event.n }
    outputs:
      - kafka: { topic: ${out} }
      - pull: { collection: ${collection}, key: event.customer_id, set: { last_n: event.n } }
`),
      { actor: 'test' },
    )

    const total = 4000
    const producing = (async () => {
      for (let i = 0; i < total; i += 100) {
        await produce(
          topic,
          Array.from({ length: 100 }, (_, j) => ({
            key: `k${(i + j) % 101}`,
            value: JSON.stringify({ customer_id: `k${(i + j) % 101}`, n: i + j }),
          })),
        )
        await sleep(50)
      }
    })()
    const a = spawnRiffle(env('a'), join(tmp.dir, 'a.log'))
    procs.push(a)
    const count = async () => (await riffle.history.list({ campaign: 'echo' }, { limit: 1000 })).items.length
    await waitFor('a makes progress', async () => (await count()) > 100, 60_000)
    const b = spawnRiffle(env('b'), join(tmp.dir, 'b.log'))
    procs.push(b)
    await waitFor(
      'b takes partitions',
      async () =>
        /"partitions":\["[^\]]+\],"msg":"joined the consumer group"/.test(
          readFileSync(join(tmp.dir, 'b.log'), 'utf8'),
        ),
      60_000,
    )
    await sleep(1500)
    await a.kill('SIGTERM') // a graceful leave: b takes over every partition
    await producing

    const all = await waitFor(
      'every offset in history',
      async () => {
        const rows = await allActivations(riffle.history, 'echo')
        return rows.length >= total && rows
      },
      180_000,
    )
    const offsets = new Set(
      all.map((r) => `${r.source.kind === 'stream' ? `${r.source.partition}/${r.source.offset}` : r.id}`),
    )
    assert.equal(offsets.size, total)
    const bLog = readFileSync(join(tmp.dir, 'b.log'), 'utf8')
    const aLog = readFileSync(join(tmp.dir, 'a.log'), 'utf8')
    assert.match(aLog, /joined the consumer group/)
    assert.match(bLog, /joined the consumer group/)
    const msgs = await readTopic(out, (m) => m.length >= total, 60_000)
    const final = await readTopic(out, (m) => m.length >= total, 60_000, 2000)
    assert.equal(
      final.length,
      total,
      `each activation once in the output topic (got ${final.length}, first read ${msgs.length})`,
    )
    assert.equal(new Set(final.map((m) => m.headers['riffle-activation-id'])).size, total)
    await riffle.close()
  })
})
