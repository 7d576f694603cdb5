import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MultipleErrors, NetworkError, ProtocolError } from '@platformatic/kafka'
import { producerRetryDelay } from '../../src/engine/engine.js'
import { KafkaStepTimeout, within } from '../../src/kafka/within.js'

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

test('a Kafka step that never settles fails after its time, naming the step; one that settles passes through', async () => {
  const never = new Promise<never>(() => {})
  const started = Date.now()
  await assert.rejects(within(never, 50, 'EndTxn'), (e: unknown) => {
    assert.ok(e instanceof KafkaStepTimeout)
    assert.match(e.message, /Kafka EndTxn did not finish within 50 ms/)
    return true
  })
  assert.ok(Date.now() - started >= 45)
  assert.equal(await within(Promise.resolve(7), 50, 'Produce'), 7)
  await assert.rejects(within(Promise.reject(new Error('broker said no')), 50, 'Produce'), /broker said no/)
})
