import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { uniqueName } from '../helpers.js'
import {
  allActivations,
  createTopic,
  type Harness,
  startEngine,
  waitFor,
  writeCommittedAndAborted,
} from './harness.js'

describe('a stream written by a transactional producer (another Riffle, Kafka Streams)', () => {
  let h: Harness | undefined
  after(async () => {
    await h?.close()
  })

  it('fires for committed events only, however many transactions the writer aborted', async () => {
    const topic = uniqueName('tx.orders')
    await createTopic(topic, 1)
    // Two writer lifetimes with one transactional id, each committing and aborting in turn.
    const committed = await writeCommittedAndAborted(
      topic,
      { lifetimes: 2, transactions: 4, perTransaction: 2 },
      (order_id) => ({
        key: Buffer.from('ann'),
        value: Buffer.from(JSON.stringify({ customer_id: 'ann', order_id })),
      }),
    )

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
