import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Producer } from '@platformatic/kafka'
import { SerialProducer } from '../../src/kafka/serial-producer.js'
import { createTopic, readTopic } from '../engine/harness.js'
import { kafkaBrokers, uniqueName } from '../helpers.js'

const idempotent = (brokers: string[]) =>
  new Producer({ clientId: 'serial-test', bootstrapBrokers: brokers, idempotent: true, acks: -1, retries: 0 })

describe('SerialProducer: an idempotent producer shared by concurrent callers', () => {
  it('writes every one of many concurrent sends once, each at its own offset', async () => {
    const topic = uniqueName('serial.out')
    await createTopic(topic, 1)
    const p = new SerialProducer(() => idempotent(kafkaBrokers()))
    try {
      const n = 30
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          p.send({ messages: [{ topic, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) }] }),
        ),
      )
      const offsets = results.map((r) => String(r.offsets?.[0]?.offset))
      assert.equal(new Set(offsets).size, n, offsets.join(','))
      const read = await readTopic(topic, (m) => m.length >= n, 15_000, 500)
      assert.deepEqual(read.map((m) => m.value).sort(), Array.from({ length: n }, (_, i) => `v${i}`).sort())
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
      const msg = { messages: [{ topic, key: Buffer.from('k'), value: Buffer.from('v') }] }
      await assert.rejects(p.send(msg), /Kafka Produce did not finish within 1000 ms/)
      const ok = await p.send(msg)
      assert.equal(made, 2)
      assert.equal(ok.offsets?.[0]?.offset, 0n)
    } finally {
      await p.close()
    }
    await assert.rejects(p.send({ messages: [] }), /closed/)
  })
})
