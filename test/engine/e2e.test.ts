import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { uniqueName } from '../helpers.js'
import {
  createTopic,
  type Harness,
  produce,
  readTopic,
  startEngine,
  waitFor,
  webhookReceiver,
} from './harness.js'

describe('real-time campaign end to end (Kafka, SQLite pull store, history, webhook)', () => {
  let h: Harness
  let hook: Awaited<ReturnType<typeof webhookReceiver>>
  const topic = uniqueName('shop.purchases')
  const out = uniqueName('campaign.offers')

  before(async () => {
    await createTopic(topic, 2)
    hook = await webhookReceiver()
    h = await startEngine({ maxMessageBytes: 100_000 })
    await h.apply(`
streams:
  - name: purchases
    topic: ${topic}
    key: customer_id
    time: ts
    fields:
      - { name: customer_id, type: string, required: true }
      - { name: order_id, type: string, required: true }
      - { name: amount, type: number, required: true }
      - { name: store, type: string, path: location.store_id }
      - { name: ts, type: timestamp }
collections:
  - name: profile
    key: customer_id
    fields:
      - { name: first_name, type: string }
      - { name: segment, type: string }
      - { name: last_offer, type: string }
campaigns:
  - name: big-spender-thanks
    trigger: { stream: purchases }
    enrich:
      - { collection: profile, key: event.customer_id, as: profile }
    where: event.amount >= 100.0 && (profile == null || profile.segment != "staff")
    content:
      offer_code: '"THX-" + event.order_id'
      message: { template: "Thanks {{ profile.first_name | default: 'friend' }}!" }
    outputs:
      - kafka: { topic: ${out}, key: event.customer_id }
      - pull: { collection: profile, key: event.customer_id, set: { last_offer: content.offer_code } }
      - webhook: { url: "${hook.url}", timeout: 2s }
`)
    await h.pull.write('profile', [
      { key: 'ann', set: { first_name: 'Ann', segment: 'gold' }, writer: 'test' },
      { key: 'sam', set: { first_name: 'Sam', segment: 'staff' }, writer: 'test' },
    ])
    await h.engine.start()
  })
  after(async () => {
    await h?.close()
    await hook?.close()
  })

  it('fires on matching events, enriched, with every output carrying the activation id', async () => {
    const ts = new Date().toISOString()
    await produce(topic, [
      {
        key: 'ann',
        value: JSON.stringify({
          customer_id: 'ann',
          order_id: 'o1',
          amount: 150,
          location: { store_id: 's1' },
          ts,
        }),
      },
      { key: 'bob', value: JSON.stringify({ customer_id: 'bob', order_id: 'o2', amount: 250.5, ts }) },
      { key: 'sam', value: JSON.stringify({ customer_id: 'sam', order_id: 'o3', amount: 500, ts }) }, // staff: no
      { key: 'ann', value: JSON.stringify({ customer_id: 'ann', order_id: 'o4', amount: 20, ts }) }, // too small
    ])
    const msgs = await readTopic(out, (m) => m.length >= 2)
    assert.equal(msgs.length, 2)
    const byKey = Object.fromEntries(msgs.map((m) => [m.key, JSON.parse(m.value)]))
    assert.equal(byKey.ann.content.offer_code, 'THX-o1')
    assert.equal(byKey.ann.content.message, 'Thanks Ann!')
    assert.equal(byKey.bob.content.message, 'Thanks friend!')
    assert.equal(byKey.ann.campaign, 'big-spender-thanks')
    assert.match(byKey.ann.id, new RegExp(`^big-spender-thanks@1/${topic.replace(/\./g, '\\.')}/\\d/\\d+$`))
    for (const m of msgs) assert.equal(m.headers['riffle-activation-id'], JSON.parse(m.value).id)

    const ann = await waitFor(
      'pull write',
      async () =>
        (await h.pull.get('profile', 'ann'))?.fields.last_offer === 'THX-o1' && h.pull.get('profile', 'ann'),
    )
    assert.equal(ann!.fields.first_name, 'Ann', 'a field-level merge keeps the other fields')
    assert.equal(ann!.writer, 'campaign:big-spender-thanks@1')

    await waitFor('webhooks', async () => hook.received.length >= 2)
    const ids = hook.received.map((r) => r.headers['idempotency-key']).sort()
    assert.deepEqual(ids, [byKey.ann.id, byKey.bob.id].sort())

    const page = await waitFor('history', async () => {
      const p = await h.history.list({ campaign: 'big-spender-thanks' })
      return p.items.length >= 2 && p
    })
    assert.deepEqual(
      page.items.map((a) => a.status),
      ['sent', 'sent'],
    )
    assert.deepEqual(page.items.find((a) => a.customerKey === 'ann')!.deliveries, {
      [`kafka:${out}`]: { status: 'ok' },
      'pull:profile': { status: 'ok' },
      'webhook:2': { status: 'ok' },
    })
  })

  it('dead-letters each kind of bad message with its reason, and the partition keeps moving', async () => {
    const ok = JSON.stringify({
      customer_id: 'zed',
      order_id: 'o9',
      amount: 999,
      ts: new Date().toISOString(),
    })
    await produce(topic, [
      { key: 'a', value: '{"customer_id": "a", ' },
      { key: 'b', value: JSON.stringify({ customer_id: 'b', order_id: 'x', amount: 'lots' }) },
      { key: 'c', value: JSON.stringify({ customer_id: 'c', amount: 5 }) },
      { key: 'd', value: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) },
      { key: 'e', value: null },
      {
        key: 'f',
        value: JSON.stringify({ customer_id: 'f', order_id: 'x', amount: 1, pad: 'x'.repeat(200_000) }),
      },
      { key: 'g', value: '[1,2]' },
      { key: 'zed', value: ok },
    ])
    const dlq = await readTopic(`${topic}.dlq`, (m) => m.length >= 7)
    const reasons = Object.fromEntries(dlq.map((m) => [m.key, m.headers['riffle-dlq-reason']]))
    assert.deepEqual(reasons, {
      a: 'invalid_json',
      b: 'wrong_type',
      c: 'missing_required',
      d: 'invalid_utf8',
      e: 'empty_value',
      f: 'oversize',
      g: 'not_an_object',
    })
    const b = dlq.find((m) => m.key === 'b')!
    assert.match(b.headers['riffle-dlq-detail']!, /field "amount" must be number/)
    assert.equal(b.headers['riffle-source-topic'], topic)
    assert.ok(/^\d+$/.test(b.headers['riffle-source-offset']!))
    assert.ok(b.headers['riffle-source-partition'] !== undefined)
    const offers = await readTopic(out, (m) => m.some((x) => x.key === 'zed'))
    assert.ok(
      offers.some((x) => x.key === 'zed'),
      'a good message after bad ones still fires',
    )
    const metrics = await h.metrics.metrics()
    assert.match(metrics, /riffle_dead_letters_total\{stream="purchases",reason="invalid_json"\} 1/)
    assert.match(metrics, /riffle_events_in_total\{stream="purchases"\} \d+/)
    assert.match(metrics, /riffle_event_to_output_seconds_count\{stream="purchases"\} \d+/)
  })
})
