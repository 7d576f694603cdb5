import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { Admin } from '@platformatic/kafka'
import { sampleTopic } from '../../src/kafka/sample.js'
import { createTopic, produce } from '../engine/harness.js'
import { kafkaBrokers, uniqueName } from '../helpers.js'

test('a stream sample reads the newest messages and leaves no consumer group behind', async () => {
  const topic = uniqueName('sample.groups')
  await createTopic(topic, 2)
  await produce(
    topic,
    Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ n: i }) })),
  )
  const groupId = `riffle-sample-test-${randomUUID()}`
  const sampled = await sampleTopic({ brokers: kafkaBrokers(), topic, limit: 4, groupId })
  assert.equal(sampled.length, 4)
  for (const m of sampled) assert.equal(typeof (m.json as { n: number }).n, 'number')

  const admin = new Admin({ clientId: 'sample-test', bootstrapBrokers: kafkaBrokers() })
  try {
    const groups = await admin.listGroups()
    assert.equal(
      groups.has(groupId),
      false,
      `group ${groupId} is still listed: ${JSON.stringify(groups.get(groupId))}`,
    )
  } finally {
    await admin.close()
  }
})
