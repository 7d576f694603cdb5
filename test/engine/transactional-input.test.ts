import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { Producer } from '@platformatic/kafka'
import { kafkaBrokers, uniqueName } from '../helpers.js'
import { allActivations, createTopic, type Harness, startEngine, waitFor } from './harness.js'

describe('a stream written by a transactional producer (another Riffle, Kafka Streams)', () => {
  let h: Harness | undefined
  after(async () => {
    await h?.close()
  })

  it('fires for committed events only, however many transactions the writer aborted', async () => {
    const topic = uniqueName('tx.orders')
    await createTopic(topic, 1)
    // Two writer lifetimes with one transactional id, each committing and aborting in turn.
    const committed: string[] = []
    for (let life = 0; life < 2; life++) {
      const p = new Producer({
        clientId: 'tx-writer',
        bootstrapBrokers: kafkaBrokers(),
        transactionalId: `${topic}-writer`,
        idempotent: true,
        producerId: -1n,
        producerEpoch: -1,
        acks: -1,
      })
      try {
        for (let t = 0; t < 4; t++) {
          const commit = t % 2 === 0
          const ids = [0, 1].map((i) => `${life}-${t}-${i}-${commit ? 'committed' : 'aborted'}`)
          const tx = await p.beginTransaction()
          await tx.send({
            messages: ids.map((order_id) => ({
              topic,
              key: Buffer.from('ann'),
              value: Buffer.from(JSON.stringify({ customer_id: 'ann', order_id })),
            })),
          })
          if (commit) {
            await tx.commit()
            committed.push(...ids)
          } else await tx.abort()
        }
      } finally {
        await p.close()
      }
    }

    h = await startEngine()
    await h.apply(`
streams:
  - name: orders
    topic: ${topic}
    key: customer_id
    fields:
      - { name: customer_id, type: string, required: true }
      - { name: order_id, type: string, required: true }
campaigns:
  - name: seen
    trigger: { stream: orders }
    content: { order: event.order_id }
    outputs: []
`)
    await h.engine.start()
    const last = committed.at(-1)
    const all = await waitFor(
      'the last committed event is activated',
      async () => {
        const rows = await allActivations(h!.history, 'seen')
        return rows.some((a) => a.content.order === last) && rows
      },
      30_000,
    )
    assert.deepEqual(
      all.map((a) => String(a.content.order)).sort(),
      [...committed].sort(),
      'one activation per committed event, none for an aborted one',
    )
  })
})
