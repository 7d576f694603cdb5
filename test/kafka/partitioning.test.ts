import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { loadConfig } from '../../src/config.js'
import { parseDefinitionsText } from '../../src/definitions/source.js'
import { createLogger } from '../../src/log.js'
import { type Server, startServer } from '../../src/server.js'
import { createTopic, readTopic } from '../engine/harness.js'
import { kafkaBrokers, tempDir, uniqueName } from '../helpers.js'

// The partition of each key among 6, as Apache Kafka's Java client computes it:
// Utils.toPositive(Utils.murmur2(key.getBytes(UTF_8))) % 6, run with kafka-clients 4.x on Java 17.
const JAVA_PARTITION: Record<string, number> = {
  ann: 2,
  bob: 0,
  c42: 0,
  c1001: 4,
  'customer-7': 1,
  zoë: 0,
}

describe('keyed records land in the partition a Java producer would choose', () => {
  const tmp = tempDir()
  let server: Server | undefined
  after(async () => {
    await server?.close()
    tmp.cleanup()
  })

  it('for HTTP ingest and for a campaign Kafka output', async () => {
    const input = uniqueName('parts.in')
    const output = uniqueName('parts.out')
    await createTopic(input, 6)
    await createTopic(output, 6)
    server = await startServer(
      loadConfig({
        RIFFLE_DATA_DIR: tmp.dir,
        RIFFLE_PORT: '0',
        RIFFLE_KAFKA_BROKERS: kafkaBrokers().join(','),
        RIFFLE_ENGINE_GROUP: uniqueName('parts'),
        RIFFLE_ENGINE_ID: uniqueName('parts'),
      }),
      createLogger('silent'),
    )
    await server.riffle.defs.apply(
      parseDefinitionsText(`
streams:
  - name: visits
    topic: ${input}
    key: customer_id
    fields: [ { name: customer_id, type: string, required: true } ]
campaigns:
  - name: echo
    trigger: { stream: visits }
    outputs:
      - kafka: { topic: ${output}, key: event.customer_id }
`),
      { actor: 'test' },
    )
    const key = (await server.riffle.keys.create(['ingest'])).key
    for (const [customer, partition] of Object.entries(JAVA_PARTITION)) {
      const res = await fetch(`${server.url}/ingest/v1/visits`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ customer_id: customer }),
      })
      const body = (await res.json()) as { partition: number }
      assert.equal(res.status, 202)
      assert.equal(body.partition, partition, `ingest of "${customer}"`)
    }
    const n = Object.keys(JAVA_PARTITION).length
    const outputs = await readTopic(output, (m) => m.length >= n, 30_000)
    assert.deepEqual(
      Object.fromEntries(outputs.map((m) => [m.key, m.partition])),
      JAVA_PARTITION,
      'the campaign output, keyed by customer',
    )
  })
})
