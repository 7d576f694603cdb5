import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { dropAbortedRecords, type FetchedBatch } from '../../src/kafka/read-committed.js'
import { createTopic, readTopic, writeCommittedAndAborted } from '../engine/harness.js'
import { uniqueName } from '../helpers.js'

const TXN = 1 << 4
const CONTROL = 1 << 5

function data(firstOffset: bigint, count: number, producerId: bigint, transactional = true): FetchedBatch {
  return {
    firstOffset,
    lastOffsetDelta: count - 1,
    attributes: transactional ? TXN : 0,
    producerId,
    records: Array.from({ length: count }, () => ({ key: Buffer.from('k') })),
  }
}

function marker(offset: bigint, producerId: bigint, abort: boolean): FetchedBatch {
  const key = Buffer.alloc(4)
  key.writeInt16BE(0, 0)
  key.writeInt16BE(abort ? 0 : 1, 2)
  return {
    firstOffset: offset,
    lastOffsetDelta: 0,
    attributes: TXN | CONTROL,
    producerId,
    records: [{ key }],
  }
}

describe('read_committed: every aborted transaction is dropped', () => {
  it('drops each of several aborts by one producer, and keeps what others wrote in between', () => {
    const batches = [
      data(0n, 2, 7n), // committed
      marker(2n, 7n, false),
      data(3n, 2, 7n), // aborted
      data(5n, 1, 9n), // another producer's, committed
      marker(6n, 7n, true),
      data(7n, 2, 7n), // committed
      marker(9n, 7n, false),
      data(10n, 1, 0n, false), // not transactional
      data(11n, 3, 7n), // aborted
      marker(14n, 7n, true),
      marker(15n, 9n, false),
      data(16n, 2, 7n), // aborted; its marker is beyond this response
    ]
    const response = {
      responses: [
        {
          partitions: [
            {
              abortedTransactions: [
                { producerId: 7n, firstOffset: 16n },
                { producerId: 7n, firstOffset: 3n },
                { producerId: 7n, firstOffset: 11n },
              ],
              records: batches,
            },
          ],
        },
      ],
    }
    assert.equal(dropAbortedRecords(response), 7)
    const kept = batches
      .filter((b) => !(b.attributes & CONTROL))
      .map((b) => [Number(b.firstOffset), b.records.length])
    assert.deepEqual(kept, [
      [0, 2],
      [3, 0],
      [5, 1],
      [7, 2],
      [10, 1],
      [11, 0],
      [16, 0],
    ])
    assert.equal(batches.length, 12, 'emptied batches stay, so the fetch position moves past them')
    assert.deepEqual(response.responses[0]!.partitions[0]!.abortedTransactions, [])
  })

  it('a reader sees only the committed records of a producer that aborted again and again', async () => {
    const topic = uniqueName('rc.out')
    await createTopic(topic, 1)
    // Three producer lifetimes with one transactional id, as an engine restarted after kill -9.
    const expected = await writeCommittedAndAborted(
      topic,
      { lifetimes: 3, transactions: 4, perTransaction: 3 },
      (id) => ({ key: Buffer.from('k'), value: Buffer.from(id) }),
    )
    const read = await readTopic(topic, (m) => m.length >= expected.length, 15_000, 1500)
    assert.deepEqual(
      read.map((m) => m.value),
      expected,
    )
  })
})
