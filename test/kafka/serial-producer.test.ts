import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Producer } from '@platformatic/kafka'
import { SerialProducer } from '../../src/kafka/serial-producer.js'
import { createTopic, readTopic } from '../engine/harness.js'
import { kafkaBrokers, uniqueName } from '../helpers.js'

const idempotent = (brokers: string[]) =>
  new Producer({ clientId: 'serial-test', bootstrapBrokers: brokers, idempotent: true, acks: -1, retries: 0 })

const msg0 = (topic: string) => [{ topic, key: Buffer.from('k'), value: Buffer.from('late') }]

describe('SerialProducer: an idempotent producer shared by concurrent callers', () => {
  it('writes every one of many concurrent sends once, and tells each its own partition and offset', async () => {
    const topic = uniqueName('serial.out')
    await createTopic(topic, 3)
    const p = new SerialProducer(() => idempotent(kafkaBrokers()))
    try {
      const n = 60
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          p.send([{ topic, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) }]),
        ),
      )
      const read = await readTopic(topic, (m) => m.length >= n, 15_000, 500)
      assert.equal(read.length, n)
      const where = new Map(read.map((m) => [m.value, `${m.partition}/${m.offset}`]))
      for (let i = 0; i < n; i++) {
        const [o] = results[i]!
        assert.equal(`${o!.partition}/${o!.offset}`, where.get(`v${i}`), `send ${i}`)
      }
      // a caller's several messages come back in order, one entry each
      const many = await p.send(
        ['a', 'b', 'c'].map((v) => ({ topic, key: Buffer.from('same'), value: Buffer.from(v) })),
      )
      assert.equal(many.length, 3)
      assert.deepEqual(
        many.map((o) => o.offset - many[0]!.offset),
        [0n, 1n, 2n],
      )
    } finally {
      await p.close()
    }
  })

  it('after a failed send, the next one gets a new producer', async () => {
    const topic = uniqueName('serial.retry')
    await createTopic(topic, 1)
    let made = 0
    // the first producer points at a port nobody listens on; the second at the broker
    // (an idempotent producer's send to a broker that is down never settles by itself: the timeout ends it)
    const p = new SerialProducer(() => idempotent(made++ === 0 ? ['127.0.0.1:1'] : kafkaBrokers()), {
      timeoutMs: 1000,
    })
    try {
      const msg = [{ topic, key: Buffer.from('k'), value: Buffer.from('v') }]
      await assert.rejects(p.send(msg), /Kafka (Metadata|Produce) did not finish within 1000 ms/)
      const ok = await p.send(msg)
      assert.equal(made, 2)
      assert.equal(ok[0]?.offset, 0n)
    } finally {
      await p.close()
    }
    await assert.rejects(p.send(msg0(topic)), /closed/)
  })
  it('sends what one request cannot carry in consecutive parts, every message once and in order', async () => {
    // one partition: every record batch of the send lands in one produce request's batch, which
    // the broker refuses whole past 1 MiB (seen: 5,000 activations of ~700 bytes)
    const topic = uniqueName('serial.big')
    await createTopic(topic, 1)
    const p = new SerialProducer(() => idempotent(kafkaBrokers()))
    try {
      const n = 3_000
      const pad = 'x'.repeat(700)
      const offsets = await p.send(
        Array.from({ length: n }, (_, i) => ({
          topic,
          key: Buffer.from(`k${i}`),
          value: Buffer.from(`${i} ${pad}`),
        })),
      )
      assert.equal(offsets.length, n)
      assert.deepEqual(
        offsets.map((o) => o.offset),
        Array.from({ length: n }, (_, i) => BigInt(i)),
      )
      const read = await readTopic(topic, (m) => m.length >= n, 30_000, 1000)
      assert.equal(read.length, n)
      for (const [i, m] of read.entries()) assert.equal(m.value.split(' ')[0], String(i))
    } finally {
      await p.close()
    }
  })
})
