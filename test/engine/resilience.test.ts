import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { tempDir, uniqueName } from '../helpers.js'
import {
  createTopic,
  type Harness,
  produce,
  readTopic,
  startEngine,
  waitFor,
  webhookReceiver,
} from './harness.js'

const purchase = (customer: string, order: string, amount = 10) => ({
  key: customer,
  value: JSON.stringify({ customer_id: customer, order_id: order, amount }),
})

function startRedis(port: number, dir: string): ChildProcess {
  return spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    {
      stdio: 'ignore',
    },
  )
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return
  const done = new Promise((r) => p.once('exit', r))
  p.kill('SIGKILL')
  await done
}

describe('live changes and outages', () => {
  describe('a pull store outage (Redis down, then back)', () => {
    let h: Harness
    let redis: ChildProcess
    const port = 30000 + Math.floor(Math.random() * 10000)
    const tmp = tempDir()
    const topic = uniqueName('outage.events')
    const out = uniqueName('outage.offers')

    before(async () => {
      await createTopic(topic)
      redis = startRedis(port, tmp.dir)
      await new Promise((r) => setTimeout(r, 500))
      h = await startEngine({ pullUrl: `redis://127.0.0.1:${port}` })
      await h.apply(`
streams:
  - name: events
    topic: ${topic}
    key: customer_id
    fields:
      - { name: customer_id, type: string, required: true }
      - { name: order_id, type: string }
      - { name: amount, type: number }
collections:
  - name: profile
    key: customer_id
    fields: [ { name: last_order, type: string } ]
campaigns:
  - name: remember
    trigger: { stream: events }
    enrich: [ { collection: profile, key: event.customer_id, as: profile } ]
    outputs:
      - pull: { collection: profile, key: event.customer_id, set: { last_order: event.order_id } }
      - kafka: { topic: ${out} }
`)
      await h.engine.start()
    })
    after(async () => {
      await h?.close()
      await stop(redis)
      tmp.cleanup()
    })

    it('pauses without committing while the store is down, then recovers by itself', async () => {
      await produce(topic, [purchase('a', 'o1')])
      await waitFor(
        'first activation',
        async () => (await h.pull.get('profile', 'a'))?.fields.last_order === 'o1',
      )
      await stop(redis)
      await produce(topic, [purchase('a', 'o2'), purchase('b', 'o3')])
      await new Promise((r) => setTimeout(r, 2500))
      const during = await h.history.list({ campaign: 'remember' })
      assert.equal(during.items.length, 1, 'nothing past the outage is recorded')
      assert.ok((h.engine.status().lastError ?? '').length > 0, 'the engine reports the outage')
      assert.ok(h.engine.status().buffered <= 5000, 'memory stays bounded')
      redis = startRedis(port, tmp.dir)
      await waitFor(
        'recovery',
        async () => (await h.history.list({ campaign: 'remember' })).items.length === 3,
        60_000,
      )
      assert.equal((await h.pull.get('profile', 'b'))?.fields.last_order, 'o3')
      const offers = await readTopic(out, (m) => m.length >= 3)
      assert.equal(offers.length, 3, 'each activation reached Kafka once')
      assert.match(await h.metrics.metrics(), /riffle_engine_batches_total\{result="retry"\} [1-9]/)
    })
  })

  describe('a webhook target that fails, then recovers', () => {
    let h: Harness
    let failing = true
    let hook: Awaited<ReturnType<typeof webhookReceiver>>
    const topic = uniqueName('hook.events')

    before(async () => {
      await createTopic(topic)
      hook = await webhookReceiver(() => (failing ? 503 : 200))
      h = await startEngine()
      await h.apply(`
streams:
  - name: events
    topic: ${topic}
    key: customer_id
    fields: [ { name: customer_id, type: string, required: true }, { name: order_id, type: string } ]
campaigns:
  - name: notify
    trigger: { stream: events }
    outputs: [ { webhook: { url: "${hook.url}", timeout: 1s, retries: 1 } } ]
`)
      await h.engine.start()
    })
    after(async () => {
      await h?.close()
      await hook?.close()
    })

    it('retries the batch with backoff and delivers once the target answers, with one Idempotency-Key', async () => {
      await produce(topic, [purchase('c', 'o1')])
      await waitFor('failed attempts', async () => hook.received.length >= 3)
      assert.equal((await h.history.list({ campaign: 'notify' })).items.length, 0)
      failing = false
      await waitFor(
        'delivery',
        async () => (await h.history.list({ campaign: 'notify' })).items.length === 1,
        60_000,
      )
      const keys = new Set(hook.received.map((r) => r.headers['idempotency-key']))
      assert.equal(keys.size, 1, 'every attempt carried the same activation id')
      assert.equal(hook.received.at(-1)!.status, 200)
    })
  })

  describe('live changes', () => {
    let h: Harness
    const topic = uniqueName('live.events')

    before(async () => {
      await createTopic(topic)
      h = await startEngine()
      await h.apply(`
streams:
  - name: events
    topic: ${topic}
    key: customer_id
    fields: [ { name: customer_id, type: string, required: true }, { name: order_id, type: string }, { name: amount, type: number } ]
campaigns:
  - name: tiered
    trigger: { stream: events }
    where: event.amount > 100.0
    content: { tier: '"gold"' }
`)
      await h.engine.start()
    })
    after(async () => h?.close())

    it('applies changed definitions without a restart; each activation records its version', async () => {
      await produce(topic, [purchase('a', 'o1', 150), purchase('b', 'o2', 50)])
      await waitFor('v1', async () => (await h.history.list({ campaign: 'tiered' })).items.length === 1)
      await h.apply(`
campaigns:
  - name: tiered
    trigger: { stream: events }
    where: event.amount > 10.0
    content: { tier: '"silver"' }
`)
      await new Promise((r) => setTimeout(r, 600))
      await produce(topic, [purchase('c', 'o3', 50)])
      await waitFor('v2', async () => (await h.history.list({ campaign: 'tiered' })).items.length === 2)
      const items = (await h.history.list({ campaign: 'tiered' })).items
      const c = items.find((a) => a.customerKey === 'c')!
      assert.equal(c.campaignVersion, 2)
      assert.equal(c.content.tier, 'silver')
      assert.equal(items.find((a) => a.customerKey === 'a')!.campaignVersion, 1)

      // Pausing stops it; a new campaign on a new stream subscribes to its topic.
      await h.defs.setStatus('tiered', 'paused', 'test')
      const other = uniqueName('live.other')
      await createTopic(other)
      await h.apply(`
streams:
  - name: other
    topic: ${other}
    key: customer_id
    fields: [ { name: customer_id, type: string, required: true } ]
campaigns:
  - name: newcomer
    trigger: { stream: other }
`)
      await waitFor('resubscribed', async () => h.engine.status().topics.includes(other))
      await produce(topic, [purchase('d', 'o4', 500)])
      await produce(other, [{ key: 'z', value: JSON.stringify({ customer_id: 'z' }) }])
      await waitFor(
        'newcomer fired',
        async () => (await h.history.list({ campaign: 'newcomer' })).items.length === 1,
        30_000,
      )
      assert.equal(
        (await h.history.list({ campaign: 'tiered' })).items.length,
        2,
        'a paused campaign does not fire',
      )
    })
  })
})
