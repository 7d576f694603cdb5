import assert from 'node:assert/strict'
import { it } from 'node:test'
import { startEngine, waitFor } from './harness.js'

it('with Kafka away at start-up, the engine starts, says why it waits, is not ready, and stops on demand', async () => {
  // nothing listens on port 1: the client's InitProducerId never answers, and the step timeout ends it
  const h = await startEngine({ brokers: ['127.0.0.1:1'], kafkaStepTimeoutMs: 300 })
  try {
    const started = Date.now()
    await h.engine.start()
    assert.ok(Date.now() - started < 1000, 'start() does not wait for Kafka')
    const status = await waitFor('the reason in the status', async () => {
      const s = h.engine.status()
      return s.lastError?.includes('InitProducerId') && s
    })
    assert.match(status.lastError!, /Kafka InitProducerId did not finish within 300 ms/)
    assert.equal(h.engine.ready, false)
  } finally {
    const stopping = Date.now()
    await h.close()
    assert.ok(Date.now() - stopping < 8000, 'stop() does not wait for Kafka either')
  }
})
