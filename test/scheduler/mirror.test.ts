import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTopic, readTopic } from '../engine/harness.js'
import { kafkaBrokers, uniqueName } from '../helpers.js'
import { type Harness, openHarness } from './harness.js'

let h: Harness

const DEFS = `
collections:
  - name: profile
    key: customer_id
    fields:
      - { name: tier, type: string }
campaigns:
  - name: mirrored
    trigger: { manual: true }
    cells: { holdout: 10 }
    audience: { sql: "select customer_id, amount from customers" }
    content:
      note: '"row " + row.customer_id + " " + "${'x'.repeat(300)}"'
    outputs:
      - pull: { collection: profile, key: row.customer_id, set: { tier: '"m"' } }
`

const rows = 6_000
before(async () => {
  h = await openHarness()
  let csv = 'customer_id,amount\n'
  for (let i = 1; i <= rows; i++) csv += `c${String(i).padStart(6, '0')},${i % 100}\n`
  assert.equal(await h.loadCsv('customers', csv), rows)
  await h.apply(DEFS)
})
after(async () => h.close())

test('a scheduled run mirrors every activation to RIFFLE_HISTORY_TOPIC, holdout included (was: only the engine did)', async () => {
  const topic = uniqueName('riffle.history')
  const brokers = kafkaBrokers()
  // batches of 5,000 records of ~450 bytes: more than one produce request may carry
  const s = await h.scheduler({ batchSize: 5000 }, { brokers: async () => brokers, historyTopic: topic })
  const end = await (await s.runNow('mirrored')).done
  assert.equal(end.status, 'succeeded', end.errors.join('; '))
  assert.ok((end.activations.holdout ?? 0) > 0, 'some rows are held out')

  const recorded = new Map<string, { customerKey: string; outputTime: number; status: string }>()
  for (let cursor: string | undefined; ; ) {
    const page = await h.riffle.history.list(
      { campaign: 'mirrored' },
      { limit: 1000, ...(cursor ? { cursor } : {}) },
    )
    for (const a of page.items) recorded.set(a.id, a)
    if (!page.nextCursor) break
    cursor = page.nextCursor
  }
  assert.equal(recorded.size, rows)

  const got = await readTopic(topic, (m) => m.length >= rows, 60_000, 500)
  assert.equal(got.length, rows, 'one message per activation')
  const ids = new Set(got.map((m) => m.headers['riffle-activation-id']))
  assert.equal(ids.size, rows)
  for (const m of got) {
    const a = recorded.get(m.headers['riffle-activation-id']!)
    assert.ok(a, `mirrored ${m.headers['riffle-activation-id']} is in the history`)
    assert.equal(m.key, a.customerKey)
    assert.equal(m.headers['riffle-campaign'], 'mirrored')
    const value = JSON.parse(m.value)
    assert.equal(value.status, a.status)
    assert.equal(value.source.kind, 'run')
    assert.equal(value.outputTime, new Date(a.outputTime).toISOString())
  }
  assert.ok(got.some((m) => JSON.parse(m.value).status === 'holdout'))
})

test('a run whose history mirror cannot be reached fails, naming the topic', async () => {
  const s = await h.scheduler(
    { batchSize: 5000 },
    { brokers: async () => ['127.0.0.1:1'], historyTopic: 'riffle.nowhere' },
  )
  const end = await (await s.runNow('mirrored')).done
  assert.equal(end.status, 'failed')
  assert.match(end.message ?? '', /could not mirror \d+ activations to topic "riffle.nowhere"/)
})

test('a scheduled run writes a batch of Kafka outputs larger than one produce request may carry', async () => {
  const topic = uniqueName('riffle.sched.out')
  await h.apply(`${DEFS}
  - name: to-kafka
    trigger: { manual: true }
    audience: { sql: "select customer_id, amount from customers" }
    content:
      note: '"row " + row.customer_id + " " + "${'y'.repeat(300)}"'
    outputs:
      - kafka: { topic: ${topic}, key: row.customer_id }
`)
  await createTopic(topic, 1) // one partition: the whole batch in one record batch (refused past 1 MiB)
  const s = await h.scheduler({ batchSize: 5000 }, { brokers: async () => kafkaBrokers() })
  const end = await (await s.runNow('to-kafka')).done
  assert.equal(end.status, 'succeeded', end.errors.join('; '))
  const got = await readTopic(topic, (m) => m.length >= rows, 60_000, 500)
  assert.equal(got.length, rows)
  assert.equal(new Set(got.map((m) => m.headers['riffle-activation-id'])).size, rows)
  assert.deepEqual(
    got.slice(0, 3).map((m) => m.key),
    ['c000001', 'c000002', 'c000003'],
  )
})
