import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MultipleErrors, NetworkError, ProtocolError } from '@platformatic/kafka'
import { producerRetryDelay } from '../../src/engine/engine.js'

test('the producer retries CONCURRENT_TRANSACTIONS after a few milliseconds, anything else with a growing backoff', () => {
  const concurrent = new MultipleErrors('AddPartitionsToTxn failed', [
    new ProtocolError('CONCURRENT_TRANSACTIONS'),
  ])
  const delays = [1, 2, 3, 4, 10].map((a) =>
    producerRetryDelay(null, 'addPartitionsToTransaction', a, 30, concurrent),
  )
  assert.deepEqual(delays, [2, 4, 8, 10, 10])
  const down = new NetworkError('Connection closed')
  const backoff = [1, 2, 5, 10, 30].map((a) => producerRetryDelay(null, 'produce', a, 30, down))
  assert.deepEqual(backoff, [20, 40, 100, 200, 200])
  // 30 retries of a broker that stays away: about 5 s before the batch fails and the engine retries it
  let total = 0
  for (let a = 1; a <= 30; a++) total += producerRetryDelay(null, 'produce', a, 30, down)
  assert.ok(total > 3000 && total < 6000, String(total))
})
