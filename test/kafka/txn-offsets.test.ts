import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { Consumer, type Message, Producer } from '@platformatic/kafka'
import { producerRetryDelay } from '../../src/engine/engine.js'
import { addOffsetsToTransaction } from '../../src/kafka/txn-offsets.js'
import { createTopic, produce, waitFor } from '../engine/harness.js'
import { kafkaBrokers, uniqueName } from '../helpers.js'

type Msg = Message<Buffer, Buffer, Buffer, Buffer>
const topic = uniqueName('txnoffsets')
const groupId = `txn-offsets-${randomUUID().slice(0, 8)}`
let consumer: Consumer<Buffer, Buffer, Buffer, Buffer>
let producer: Producer<Buffer, Buffer, Buffer, Buffer>
let close: () => Promise<void>
const got: Msg[] = []

before(async () => {
  await createTopic(topic, 3)
  await produce(
    topic,
    Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })),
  )
  consumer = new Consumer({
    clientId: 'txn-offsets-test',
    groupId,
    bootstrapBrokers: kafkaBrokers(),
    maxWaitTime: 100,
  })
  const stream = await consumer.consume({
    topics: [topic],
    mode: 'earliest',
    autocommit: false,
    maxWaitTime: 100,
  })
  stream.on('data', (m: Msg) => got.push(m))
  producer = new Producer({
    clientId: 'txn-offsets-test',
    bootstrapBrokers: kafkaBrokers(),
    transactionalId: `txn-offsets-${randomUUID().slice(0, 8)}`,
    idempotent: true,
    producerId: -1n,
    producerEpoch: -1,
    acks: -1,
    retryDelay: producerRetryDelay, // as the engine's: CONCURRENT_TRANSACTIONS after a commit
  })
  close = async () => {
    await stream.close()
    await consumer.close()
    await producer.close()
  }
  // Count each offset once (a rebalance while the group forms may deliver some again); then read
  // a moment longer, so that the last message of each partition is the one last delivered.
  const distinct = () => new Set(got.map((m) => `${m.partition}:${m.offset}`)).size
  await waitFor('every message consumed', async () => distinct() >= 30)
  await new Promise((r) => setTimeout(r, 1000))
})
after(async () => close?.())

/** Each partition's last message, as most recently delivered (its consumer metadata is current). */
function lastPerPartition(msgs: Msg[]): Msg[] {
  const last = new Map<number, Msg>()
  for (const m of msgs) if (m.offset >= (last.get(m.partition)?.offset ?? -1n)) last.set(m.partition, m)
  return [...last.values()]
}

async function committed(): Promise<Map<number, bigint>> {
  const r = await consumer.listCommittedOffsets({ topics: [{ topic, partitions: [0, 1, 2] }] })
  return new Map((r.get(topic) ?? []).map((o, p) => [p, o]))
}

test('one TxnOffsetCommit commits every partition of a batch with its transaction, and an abort commits none', async () => {
  const last = lastPerPartition(got)
  assert.ok(last.length >= 2, `the keys spread over ${last.length} partition(s)`)

  const tx = await producer.beginTransaction()
  await tx.addConsumer(consumer)
  await addOffsetsToTransaction(producer, tx.id, last)
  await tx.commit()
  // the coordinator makes committed transactional offsets visible a moment after EndTxn
  const want = new Map(last.map((m) => [m.partition, m.offset + 1n]))
  const after1 = await waitFor('the offsets committed', async () => {
    const c = await committed()
    return [...want].every(([p, o]) => c.get(p) === o) && c
  })
  for (const m of last) assert.equal(after1.get(m.partition), m.offset + 1n, `partition ${m.partition}`)

  // the same, further on, in a transaction that aborts: nothing moves
  const tx2 = await producer.beginTransaction()
  await tx2.addConsumer(consumer)
  await addOffsetsToTransaction(
    producer,
    tx2.id,
    last.map((m) => ({ ...m, offset: m.offset + 100n })),
  )
  await tx2.abort()
  await new Promise((r) => setTimeout(r, 1000))
  assert.deepEqual(await committed(), after1)
})

test('messages without consumer metadata are refused, naming the problem', async () => {
  await assert.rejects(
    addOffsetsToTransaction(producer, 'any', [{ ...got[0]!, metadata: {} }]),
    /no consumer metadata/,
  )
})
