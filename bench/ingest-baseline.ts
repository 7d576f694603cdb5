/**
 * bench:ingest's baseline: the HTTP-to-Kafka route a team would write by hand. Fastify parses the
 * JSON, a shared @platformatic/kafka producer (acks from all in-sync replicas, not idempotent, so
 * that concurrent sends are safe) writes it, 202 with partition and offset. No validation, no keys.
 *   tsx bench/ingest-baseline.ts PORT BROKERS TOPIC
 */
import { compatibilityPartitioner, Producer } from '@platformatic/kafka'
import Fastify from 'fastify'

const [port, brokers, topic] = process.argv.slice(2) as [string, string, string]
const producer = new Producer({
  clientId: 'bench-ingest-baseline',
  bootstrapBrokers: brokers.split(','),
  partitioner: compatibilityPartitioner,
  acks: -1,
})
const app = Fastify()
app.post('/ingest', async (req, reply) => {
  const event = req.body as { customer_id: string }
  const r = await producer.send({
    messages: [{ topic, key: Buffer.from(event.customer_id), value: Buffer.from(JSON.stringify(event)) }],
  })
  const o = r.offsets?.[0]
  return reply.code(202).send({ partition: o?.partition, offset: String(o?.offset) })
})
await app.listen({ port: Number(port), host: '127.0.0.1' })
process.stdout.write('ready\n')
