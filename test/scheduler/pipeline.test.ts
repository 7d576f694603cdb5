import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { openDatabase, type SqlDatabase } from '../../src/db/sql.js'
import type { Activation } from '../../src/history/activation.js'
import { BackgroundAppender } from '../../src/history/background.js'
import { PipelinedHistory } from '../../src/history/pipeline.js'
import { HistoryStore } from '../../src/history/store.js'
import { tempDir } from '../helpers.js'
import { activation } from '../history/fixtures.js'
import { type Harness, openHarness } from './harness.js'

describe('history appends on a worker thread, pipelined with the next batch', () => {
  const tmp = tempDir('riffle-pipeline-')
  let db: SqlDatabase
  let store: HistoryStore
  before(async () => {
    db = await openDatabase('sqlite:', tmp.dir, 'history.db')
    store = await HistoryStore.open(db)
  })
  after(async () => {
    await store.close()
    await db.close()
    tmp.cleanup()
  })

  it('appendInBackground commits on the worker, idempotent on the activation id, and feeds the customer index', async () => {
    const batch = Array.from({ length: 300 }, (_, i) => activation(10_000 + i, { customerKey: `bg${i % 3}` }))
    assert.deepEqual(await store.appendInBackground(batch), { appended: 300 })
    assert.deepEqual(await store.appendInBackground(batch), { appended: 0 })
    const got = await store.get(batch[7]!.id)
    assert.equal(got?.customerKey, 'bg1')
    assert.deepEqual(got?.content, batch[7]!.content)
    await store.indexSettled(10_000)
    const counts = await store.countRecent({ customerKeys: ['bg0', 'bg1', 'bg2'], since: 0 })
    assert.deepEqual([...counts.values()], [100, 100, 100])
  })

  it('a worker that cannot start fails the append, naming the cause, and does not hang', async () => {
    const appender = new BackgroundAppender(join(tmp.dir, 'no-such-dir', 'history.db'))
    await assert.rejects(
      appender.append([activation(1)]),
      /history append worker failed: .*directory does not exist|unable to open/,
    )
    await appender.close()
  })

  it('runs what waits for durability only after the append commits, and never after one fails', async () => {
    const p = new PipelinedHistory(store)
    const a = Array.from({ length: 50 }, (_, i) => activation(20_000 + i))
    await p.append(a)
    const order: string[] = []
    p.whenDurable(async () => {
      order.push(`durable:${(await store.get(a[49]!.id)) ? 'recorded' : 'missing'}`)
    })
    // the batch in flight already answers a replay lookup
    const seen = await p.getMany([a[3]!.id, 'nope'])
    assert.deepEqual([...seen.keys()], [a[3]!.id])
    await p.settle()
    assert.deepEqual(order, ['durable:recorded'])

    // a batch the database refuses: the whole batch is left out and the callback never runs
    const bad = [activation(30_000), { ...activation(30_001), status: null } as unknown as Activation]
    await p.append(bad)
    p.whenDurable(async () => {
      order.push('durable:bad')
    })
    await assert.rejects(p.settle(), /NOT NULL constraint failed: history_activations\.status/)
    assert.deepEqual(order, ['durable:recorded'])
    assert.equal(await store.get(bad[0]!.id), undefined)
    // the failure is reported once; then callbacks run again
    p.whenDurable(async () => {
      order.push('durable:now')
    })
    await p.settle()
    assert.deepEqual(order, ['durable:recorded', 'durable:now'])
  })

  it('frequency-cap counts wait for the append in flight', async () => {
    const p = new PipelinedHistory(store)
    await p.append(Array.from({ length: 20 }, (_, i) => activation(40_000 + i, { customerKey: 'capped' })))
    const counts = await p.countRecent({ customerKeys: ['capped'], since: 0 })
    assert.equal(counts.get('capped'), 20)
  })
})

describe('a scheduled run keyed by its key column', () => {
  let h: Harness
  before(async () => {
    h = await openHarness()
    // batches of 2: [c1 c2] [c2 c3] [c4 c4]: c2 on both sides of a boundary, c4 twice in one batch
    await h.loadCsv('dupes', 'customer_id,v\nc1,1\nc2,2\nc2,3\nc3,4\nc4,5\nc4,6\n')
    await h.apply(`
collections:
  - name: marks
    key: customer_id
    fields: [ { name: v, type: integer } ]
campaigns:
  - name: mark
    trigger: { manual: true }
    audience: { sql: "select customer_id, v from dupes" }
    outputs:
      - pull: { collection: marks, key: row.customer_id, set: { v: row.v } }
`)
  })
  after(async () => h.close())

  it('treats a key repeated in the next batch as a replay, as a lookup in the history would', async () => {
    const s = await h.scheduler({ batchSize: 2 })
    const end = await (await s.runNow('mark')).done
    assert.equal(end.status, 'succeeded', end.errors.join('; '))
    assert.equal(end.rowsDone, 6)
    // c1, c2 (its second row, in the next batch, is a replay), c3, and both c4 rows of one batch
    assert.equal(end.activations.sent, 5)
    const hist = await h.riffle.history.countRecent({
      customerKeys: ['c2', 'c4'],
      campaign: 'mark',
      since: 0,
    })
    assert.equal(hist.get('c2'), 1)
    assert.equal(hist.get('c4'), 1)
    // a replay keeps its recorded decision and writes its outputs again (here from the later row)
    assert.equal((await h.riffle.pull.get('marks', 'c2'))?.fields.v, 3)
  })
})
