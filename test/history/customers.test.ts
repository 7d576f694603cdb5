import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { openDatabase, type SqlDatabase } from '../../src/db/sql.js'
import Sqlite from '../../src/db/sqlite-driver.js'
import type { Activation } from '../../src/history/activation.js'
import { HistoryStore } from '../../src/history/store.js'
import { tempDir } from '../helpers.js'
import { activation, range, T0 } from './fixtures.js'

/** Appends the way another process would: straight into the table, unannounced to this store's indexer. */
async function appendBehindItsBack(db: SqlDatabase, batch: Activation[]): Promise<void> {
  for (const a of batch) {
    await db.run(
      'insert into history_activations (id, campaign, campaign_version, cell, customer_key, source_topic, source_partition, source_offset, source_run, status, event_time, output_time, content, deliveries, reason) values (?, ?, ?, ?, ?, ?, ?, ?, null, ?, ?, ?, ?, ?, null)',
      [
        a.id,
        a.campaign,
        a.campaignVersion,
        a.cell,
        a.customerKey,
        'shop.purchases',
        0,
        a.id,
        a.status,
        a.eventTime,
        a.outputTime,
        JSON.stringify(a.content),
        JSON.stringify(a.deliveries),
      ],
    )
  }
}

describe('SQLite per-customer index (derived, kept by a worker thread)', () => {
  const tmp = tempDir('riffle-customers-')
  let db: SqlDatabase
  let store: HistoryStore
  const indexFile = () => join(tmp.dir, 'history.customers.db')
  const indexState = () => {
    const idx = new Sqlite(indexFile(), { readonly: true })
    try {
      const meta = idx.prepare('select indexed_to as n from history_customers_meta').get() as { n: number }
      const entries = idx.prepare('select count(*) as n from history_customers').get() as { n: number }
      return { indexedTo: meta.n, entries: entries.n }
    } finally {
      idx.close()
    }
  }

  before(async () => {
    db = await openDatabase('sqlite:', tmp.dir, 'history.db')
    store = await HistoryStore.open(db)
  })
  after(async () => {
    await store.close()
    await db.close()
    tmp.cleanup()
  })

  it('answers from the index and from the records it has not taken yet, alike', async () => {
    const keys = ['ann', 'ben']
    await store.append(range(6).map((i) => activation(i, { customerKey: keys[i % 2]!, campaign: 'a' })))
    await store.indexSettled()
    assert.equal(indexState().entries, 6)

    await appendBehindItsBack(
      db,
      range(5, 6).map((i) => activation(i, { customerKey: 'ann', campaign: i % 2 ? 'a' : 'b' })),
    )
    const before = indexState()
    assert.equal(before.entries, 6, 'the new records are not in the index yet')

    const counts = await store.countRecent({ customerKeys: keys, since: T0 })
    assert.deepEqual(Object.fromEntries(counts), { ann: 8, ben: 3 })
    const perCampaign = await store.countRecent({ customerKeys: keys, since: T0, campaign: 'a' })
    assert.deepEqual(Object.fromEntries(perCampaign), { ann: 5, ben: 3 })

    const pages: string[][] = []
    let cursor: string | undefined
    do {
      const p = await store.list({ customerKey: 'ann' }, cursor ? { cursor, limit: 3 } : { limit: 3 })
      pages.push(p.items.map((r) => r.content.offer_code as string))
      cursor = p.nextCursor ?? undefined
    } while (cursor)
    const expected = [10, 9, 8, 7, 6, 4, 2, 0].map((i) => `THX-${i}`)
    assert.deepEqual(pages.flat(), expected, 'pages run across the index and the rest, newest first')
    assert.equal(indexState().indexedTo, before.indexedTo, 'and that was before the index took them')

    await store.append([activation(99, { customerKey: 'zed' })]) // wakes the indexer
    await store.indexSettled()
    assert.equal(indexState().entries, 12)
    assert.deepEqual(Object.fromEntries(await store.countRecent({ customerKeys: keys, since: T0 })), {
      ann: 8,
      ben: 3,
    })
    const all = await store.list({ customerKey: 'ann' }, { limit: 100 })
    assert.deepEqual(
      all.items.map((r) => r.content.offer_code),
      expected,
    )
  })

  it('follows purges, and starts over when the history file is replaced', async () => {
    await store.purge(T0 + 3_000)
    await store.indexSettled()
    const { entries } = indexState()
    const rows = Number((await db.get<{ n: number }>('select count(*) as n from history_activations'))!.n)
    assert.equal(entries, rows, 'the index dropped what the purge dropped')

    await store.close()
    await db.close()
    for (const f of ['history.db', 'history.db-wal', 'history.db-shm'])
      rmSync(join(tmp.dir, f), { force: true })
    db = await openDatabase('sqlite:', tmp.dir, 'history.db')
    store = await HistoryStore.open(db)
    assert.deepEqual(indexState(), { indexedTo: 0, entries: 0 }, 'an index of another history is emptied')
    await store.append([activation(1, { customerKey: 'ann', campaign: 'a' })])
    assert.deepEqual(Object.fromEntries(await store.countRecent({ customerKeys: ['ann'], since: 0 })), {
      ann: 1,
    })
    await store.indexSettled()
    assert.equal(indexState().entries, 1)
  })

  it('starts catching up on open when the index is far behind', async () => {
    await store.close() // no indexer runs while another process appends
    await appendBehindItsBack(
      db,
      range(12_000, 1000).map((i) => activation(i, { customerKey: `k${i % 50}` })),
    )
    const rows = async () =>
      Number((await db.get<{ n: number }>('select count(*) as n from history_activations'))!.n)
    assert.ok(indexState().entries <= (await rows()) - 12_000)
    store = await HistoryStore.open(db) // no append follows: opening alone starts the indexer
    const deadline = Date.now() + 20_000
    while (indexState().entries < (await rows()) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50))
    assert.equal(indexState().entries, await rows())
  })

  it('indexes an in-memory history inline', async () => {
    const mem = await openDatabase('sqlite::memory:', tmp.dir)
    const s = await HistoryStore.open(mem)
    try {
      await s.append(range(4).map((i) => activation(i, { customerKey: 'ann' })))
      assert.deepEqual(Object.fromEntries(await s.countRecent({ customerKeys: ['ann'], since: T0 })), {
        ann: 4,
      })
      assert.equal((await s.list({ customerKey: 'ann' })).items.length, 4)
      await s.purge(T0 + 2_000)
      assert.equal((await s.countRecent({ customerKeys: ['ann'], since: 0 })).get('ann'), 2)
    } finally {
      await s.close()
      await mem.close()
    }
  })
})
