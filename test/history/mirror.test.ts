import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, describe, it } from 'node:test'
import { Consumer, stringDeserializers } from '@platformatic/kafka'
import { isRiffleError } from '../../src/errors.js'
import { HistoryMirror } from '../../src/history/mirror.js'
import { toRecord } from '../../src/history/schema.js'
import { honourAbortedTransactions } from '../../src/kafka/read-committed.js'
import { kafkaBrokers, uniqueName } from '../helpers.js'
import { activation, range } from './fixtures.js'

interface Received {
  key: string
  value: string
  headers: Record<string, string>
  timestamp: bigint
}

async function readAll(topic: string, expected: number, timeoutMs = 20_000): Promise<Received[]> {
  const consumer = honourAbortedTransactions(
    new Consumer({
      clientId: 'riffle-test',
      groupId: `riffle-test-${randomUUID()}`,
      bootstrapBrokers: kafkaBrokers(),
      deserializers: stringDeserializers,
    }),
  )
  const out: Received[] = []
  try {
    const stream = await consumer.consume({
      topics: [topic],
      mode: 'earliest',
      autocommit: false,
      maxWaitTime: 200,
    })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`received ${out.length} of ${expected} messages`)),
        timeoutMs,
      )
      stream.on('data', (m) => {
        const headers: Record<string, string> = {}
        for (const [k, v] of m.headers) headers[String(k)] = String(v)
        out.push({ key: m.key as string, value: m.value as string, headers, timestamp: m.timestamp })
        if (out.length >= expected) {
          clearTimeout(timer)
          resolve()
        }
      })
      stream.on('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
    })
    await stream.close().catch(() => {})
  } finally {
    await consumer.close().catch(() => {})
  }
  return out
}

describe('output history mirror to Kafka', () => {
  const closers: Array<() => Promise<void>> = []
  after(async () => {
    for (const c of closers) await c()
  })

  it('publishes every activation of a batch: key the customer, value the record, id in a header', async () => {
    const topic = uniqueName('riffle.history')
    const mirror = new HistoryMirror({ brokers: kafkaBrokers(), topic })
    closers.push(() => mirror.close())
    const batch = range(25).map((i) => activation(i, { customerKey: `cust-${i % 4}` }))
    await mirror.publish(batch.slice(0, 10))
    await mirror.publish(batch.slice(10))
    await mirror.publish([])

    const got = await readAll(topic, 25)
    assert.equal(got.length, 25)
    const byId = new Map(got.map((m) => [m.headers['riffle-activation-id'], m]))
    assert.equal(byId.size, 25)
    for (const a of batch) {
      const m = byId.get(a.id)
      assert.ok(m, a.id)
      assert.equal(m.key, a.customerKey)
      assert.deepEqual(JSON.parse(m.value), toRecord(a))
      assert.equal(m.headers['riffle-campaign'], a.campaign)
      assert.equal(m.timestamp, BigInt(a.outputTime))
    }
  })

  it('publishes a batch larger than one produce request may carry (regression: 3.4 MB failed whole)', async () => {
    const topic = uniqueName('riffle.history')
    const mirror = new HistoryMirror({ brokers: kafkaBrokers(), topic })
    closers.push(() => mirror.close())
    // ~700 bytes a record, 5,000 records, one partition: far past the broker's 1 MiB per batch
    const batch = range(5000).map((i) =>
      activation(i, { content: { offer_code: `THX-${i}`, message: `Grüße ${'x'.repeat(300)}` } }),
    )
    await mirror.publish(batch)
    const got = await readAll(topic, batch.length, 60_000)
    assert.equal(got.length, batch.length)
    assert.deepEqual(
      got.map((m) => m.headers['riffle-activation-id']),
      batch.map((a) => a.id),
      'every activation once, in order',
    )
  })

  it('fails with a retryable RIFFLE_KAFKA_UNAVAILABLE when the broker cannot be reached', async () => {
    const mirror = new HistoryMirror({ brokers: ['127.0.0.1:1'], topic: 'riffle.nowhere', timeoutMs: 500 })
    closers.push(() => mirror.close())
    await assert.rejects(mirror.publish([activation(1)]), (e) => {
      assert.ok(isRiffleError(e))
      assert.equal(e.code, 'RIFFLE_KAFKA_UNAVAILABLE')
      assert.equal(e.retryable, true)
      assert.match(e.message, /could not mirror 1 activations to topic "riffle.nowhere"/)
      return true
    })
  })
})
