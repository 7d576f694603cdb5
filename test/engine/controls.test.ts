import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { uniqueName } from '../helpers.js'
import { allActivations, createTopic, type Harness, produce, startEngine, waitFor } from './harness.js'

const ev = (customer: string, order: string, extra: Record<string, unknown> = {}) => ({
  key: customer,
  value: JSON.stringify({
    customer_id: customer,
    order_id: order,
    amount: 10,
    ts: new Date().toISOString(),
    ...extra,
  }),
})

describe('controls, cells and campaign errors', () => {
  let h: Harness
  const topic = uniqueName('ctl.events')

  before(async () => {
    await createTopic(topic, 1)
    h = await startEngine()
    await h.apply(`
streams:
  - name: events
    topic: ${topic}
    key: customer_id
    time: ts
    fields:
      - { name: customer_id, type: string, required: true }
      - { name: order_id, type: string, required: true }
      - { name: amount, type: number }
      - { name: divisor, type: integer }
      - { name: ts, type: timestamp }
collections:
  - name: seen
    key: customer_id
    fields:
      - { name: last_order, type: string }
campaigns:
  - name: dedupe
    trigger: { stream: events }
    controls: { dedupe: { key: event.order_id, window: 1h } }
    outputs: [ { pull: { collection: seen, key: event.customer_id, set: { last_order: event.order_id } } } ]
  - name: capped
    trigger: { stream: events }
    controls: { frequency: { max: 2, per: 1d } }
  - name: split
    trigger: { stream: events }
    cells: { holdout: 20, variants: [ { name: a, weight: 1 }, { name: b, weight: 1 } ] }
  - name: fresh-only
    trigger: { stream: events }
    controls: { maxEventAge: 1h }
  - name: fragile
    trigger: { stream: events }
    content: { ratio: 'event.amount / double(event.divisor)', n: 'int(event.order_id)' }
  - name: later
    trigger: { stream: events }
    startAt: "2999-01-01T00:00:00Z"
`)
    await h.engine.start()
  })
  after(async () => h?.close())

  const statuses = (campaign: string) => allActivations(h.history, campaign)

  it('applies dedupe, frequency caps, max event age, dates and cells; an expression error stays in its campaign', async () => {
    const old = new Date(Date.now() - 3 * 3_600_000).toISOString()
    await produce(topic, [
      ev('c1', 'o1'),
      ev('c1', 'o1'), // duplicate order: suppressed by dedupe
      ev('c1', 'o2'),
      ev('c1', 'o3'), // third for c1: capped
      ev('c2', 'o4', { ts: old }), // too old for fresh-only
      ev('c3', '12', { divisor: 0 }),
    ])
    await waitFor('history', async () => (await statuses('capped')).length >= 6)

    const dedupe = await statuses('dedupe')
    assert.equal(dedupe.filter((a) => a.status === 'sent').length, 5)
    const dup = dedupe.filter((a) => a.status === 'suppressed')
    assert.equal(dup.length, 1)
    assert.match(dup[0]!.reason!, /dedupe: key "o1"/)

    const capped = await statuses('capped')
    const c1 = capped.filter((a) => a.customerKey === 'c1')
    assert.deepEqual(c1.map((a) => a.status).sort(), ['sent', 'sent', 'suppressed', 'suppressed'])
    assert.match(c1.find((a) => a.status === 'suppressed')!.reason!, /frequency: 2 activation/)

    const fresh = await statuses('fresh-only')
    assert.equal(fresh.find((a) => a.customerKey === 'c2')!.status, 'expired')
    assert.equal(fresh.filter((a) => a.status === 'sent').length, 5)

    const fragile = await statuses('fragile')
    const errs = fragile.filter((a) => a.status === 'error')
    assert.equal(errs.length, 5, 'int("o1") fails for the orders that are not numbers')
    assert.match(errs[0]!.reason!, /^content: /)
    assert.equal(fragile.find((a) => a.customerKey === 'c3')!.status, 'sent', 'c3 had a numeric order id')
    assert.equal((await statuses('dedupe')).length, 6, 'the error did not stall the other campaigns')

    assert.equal((await statuses('later')).length, 0, 'a campaign before its start date does nothing')

    const seen = await h.pull.get('seen', 'c1')
    assert.equal(seen?.fields.last_order, 'o3')
    assert.match(await h.metrics.metrics(), /riffle_campaign_errors_total\{campaign="fragile"\} 5/)
  })

  it('keeps each customer in one cell, with roughly the declared split', async () => {
    const events = Array.from({ length: 400 }, (_, i) => ev(`k${i % 200}`, `s${i}`))
    await produce(topic, events)
    await waitFor('split history', async () => (await statuses('split')).length >= 406)
    const split = (await statuses('split')).filter((a) => a.customerKey.startsWith('k'))
    const cellOf = new Map<string, string>()
    for (const a of split) {
      const prev = cellOf.get(a.customerKey)
      if (prev) assert.equal(a.cell, prev, `customer ${a.customerKey} stays in one cell`)
      cellOf.set(a.customerKey, a.cell)
    }
    const counts = { holdout: 0, a: 0, b: 0 } as Record<string, number>
    for (const c of cellOf.values()) counts[c] = (counts[c] ?? 0) + 1
    assert.ok(
      counts.holdout! > 20 && counts.holdout! < 65,
      `holdout share near 20%: ${JSON.stringify(counts)}`,
    )
    assert.ok(counts.a! > 50 && counts.b! > 50, `a and b near 40% each: ${JSON.stringify(counts)}`)
    for (const a of split.filter((x) => x.cell === 'holdout')) {
      assert.equal(a.status, 'holdout')
      assert.deepEqual(a.deliveries, {})
    }
  })

  it('holds frequency caps across a restart', async () => {
    await h.restart()
    await produce(topic, [ev('c1', 'o10'), ev('c9', 'o11')])
    await waitFor(
      'capped after restart',
      async () => (await statuses('capped')).filter((a) => a.customerKey === 'c9').length === 1,
    )
    const c1 = (await statuses('capped')).filter((a) => a.customerKey === 'c1')
    assert.equal(c1.length, 5)
    assert.equal(c1.filter((a) => a.status === 'sent').length, 2, 'still only two sent after the restart')
  })

  it('a write the Pull Marketing database refuses fails its own activation only, not the batch', async () => {
    const long = 'L'.repeat(300)
    const control = 'bad\u0001key'
    const good = Array.from({ length: 20 }, (_, i) => ev(`w${i}`, `w-order-${i}`))
    await produce(topic, [...good.slice(0, 10), ev(long, 'w-long'), ev(control, 'w-ctl'), ...good.slice(10)])
    const mine = async () =>
      (await statuses('dedupe')).filter(
        (a) => a.customerKey.startsWith('w') || a.customerKey === long || a.customerKey === control,
      )
    await waitFor('isolated writes', async () => (await mine()).length >= 22)
    const all = await mine()
    const failed = all.filter((a) => a.status === 'failed')
    assert.deepEqual(failed.map((a) => a.customerKey).sort(), [control, long].sort())
    assert.match(failed.find((a) => a.customerKey === long)!.reason!, /^pull:seen: .*longer than 256/)
    assert.match(failed.find((a) => a.customerKey === control)!.reason!, /^pull:seen: .*control character/)
    assert.deepEqual(failed[0]!.deliveries['pull:seen']?.status, 'failed')
    assert.equal(all.filter((a) => a.status === 'sent').length, 20)
    for (let i = 0; i < 20; i++)
      assert.equal((await h.pull.get('seen', `w${i}`))?.fields.last_order, `w-order-${i}`)
    // the other campaigns on the stream acted on all 22 events
    assert.equal((await statuses('split')).filter((a) => a.customerKey.startsWith('w')).length, 20)
  })
})
