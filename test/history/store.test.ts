import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { SqlDatabase } from '../../src/db/sql.js'
import { isRiffleError } from '../../src/errors.js'
import type { Activation } from '../../src/history/activation.js'
import { HistoryStore } from '../../src/history/store.js'
import { activation, backends, range, T0 } from './fixtures.js'

const strip = ({ seq: _seq, ...rest }: { seq: number } & Activation) => rest

const rejectsWith = (code: string) => (e: unknown) => {
  assert.ok(isRiffleError(e), String(e))
  assert.equal(e.code, code)
  return true
}

for (const backend of backends) {
  describe(`output history store on ${backend.name}`, () => {
    let db: SqlDatabase
    let done: () => Promise<void>
    let store: HistoryStore

    before(async () => {
      ;({ db, done } = await backend.open())
      store = await HistoryStore.open(db)
    })
    after(async () => {
      await store.close()
      await db.close()
      await done()
    })

    const count = async () =>
      Number((await db.get<{ n: number }>('select count(*) as n from history_activations'))!.n)
    // through retention, so that the SQLite customer index follows
    const clear = async () => {
      await store.purge(Number.MAX_SAFE_INTEGER)
      await store.indexSettled()
      assert.equal(await count(), 0)
    }

    it('appends a batch idempotently: the same activation twice is one record', async () => {
      await clear()
      const batch = range(20).map((i) => activation(i))
      assert.deepEqual(await store.append(batch), { appended: 20 })
      assert.deepEqual(await store.append(batch), { appended: 0 }, 'a replayed batch adds nothing')
      const mixed = [activation(5), activation(20), activation(20), activation(21)]
      assert.deepEqual(await store.append(mixed), { appended: 2 }, 'duplicates inside a batch count once')
      assert.equal(await count(), 22)
      assert.deepEqual(await store.append([]), { appended: 0 })
    })

    it('reads back exactly what was appended: stream and run sources, nulls, reason, JSON content', async () => {
      await clear()
      const stream = activation(1, { status: 'suppressed', reason: 'frequency cap 1 per 7d' })
      const run = activation(2, {
        campaign: 'nightly-scores',
        source: { kind: 'run', runId: 'run-42' },
        eventTime: null,
        cell: 'holdout',
        status: 'holdout',
        content: { nested: { a: [1, 2, { b: null }] }, unicode: 'é✓' },
        deliveries: {},
      })
      await store.append([stream, run])
      const a = await store.get(stream.id)
      const b = await store.get(run.id)
      assert.ok(a && b)
      assert.deepEqual(strip(a), stream)
      assert.deepEqual(strip(b), run)
      assert.equal(run.id, 'nightly-scores@1/run/run-42/c2')
      assert.equal(await store.get('nope'), undefined)
    })

    it('numbers records in insertion order with a seq that never goes back, even after a purge', async () => {
      await clear()
      await store.append(range(5).map((i) => activation(i)))
      await store.append(range(5, 5).map((i) => activation(i)))
      const seqs = (await store.list({}, { limit: 100 })).items.map((r) => r.seq).sort((x, y) => x - y)
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!)
      const max = await store.maxSeq()
      await clear()
      await store.append([activation(100)])
      assert.ok((await store.maxSeq()) > max, 'a seq is never reused, or a watermark would skip records')
    })

    it('filters by campaign, customer, time range and status, newest first, with cursor paging', async () => {
      await clear()
      const batch = [
        ...range(30).map((i) =>
          activation(i, { campaign: i % 2 ? 'odd' : 'even', status: i % 5 === 0 ? 'holdout' : 'sent' }),
        ),
        // same output time as record 29: the seq breaks the tie
        activation(1000, { outputTime: T0 + 29_000, campaign: 'odd' }),
      ]
      await store.append(batch)

      const all = await store.list({}, { limit: 1000 })
      assert.equal(all.items.length, 31)
      assert.equal(all.nextCursor, null)
      for (let i = 1; i < all.items.length; i++) {
        const p = all.items[i - 1]!
        const c = all.items[i]!
        assert.ok(p.outputTime > c.outputTime || (p.outputTime === c.outputTime && p.seq > c.seq))
      }

      const odd = await store.list({ campaign: 'odd' })
      assert.equal(odd.items.length, 16)
      assert.ok(odd.items.every((r) => r.campaign === 'odd'))

      const c3 = await store.list({ customerKey: 'c3' })
      assert.deepEqual(
        c3.items.map((r) => r.content.offer_code),
        ['THX-23', 'THX-13', 'THX-3'],
      )

      const window = await store.list({ since: T0 + 10_000, until: T0 + 20_000 })
      assert.deepEqual(
        window.items.map((r) => r.outputTime - T0).sort((x, y) => x - y),
        range(10, 10).map((i) => i * 1000),
        'since is inclusive, until exclusive',
      )

      const holdout = await store.list({ statuses: ['holdout'] })
      assert.equal(holdout.items.length, 6)
      const both = await store.list({ statuses: ['holdout', 'sent'], campaign: 'even', since: T0 + 20_000 })
      assert.equal(both.items.length, 5)

      const seen: string[] = []
      let cursor: string | undefined
      let pages = 0
      do {
        const page = await store.list({ campaign: 'odd' }, cursor ? { cursor, limit: 4 } : { limit: 4 })
        seen.push(...page.items.map((r) => r.id))
        cursor = page.nextCursor ?? undefined
        pages++
      } while (cursor)
      assert.equal(pages, 4)
      assert.equal(seen.length, 16)
      assert.equal(new Set(seen).size, 16, 'paging returns every record exactly once')
      assert.deepEqual(
        seen,
        odd.items.map((r) => r.id),
      )

      await assert.rejects(store.list({}, { cursor: 'garbage' }), rejectsWith('RIFFLE_BAD_CURSOR'))
    })

    it('counts recent sent activations for many customer keys in one call (frequency caps)', async () => {
      await clear()
      await store.append([
        activation(1, { customerKey: 'alice', campaign: 'a', outputTime: T0 }),
        activation(2, { customerKey: 'alice', campaign: 'a', outputTime: T0 + 10 }),
        activation(3, { customerKey: 'alice', campaign: 'b', outputTime: T0 + 20 }),
        activation(4, { customerKey: 'alice', campaign: 'a', outputTime: T0 - 1 }),
        activation(5, { customerKey: 'alice', campaign: 'a', outputTime: T0 + 30, status: 'holdout' }),
        activation(6, { customerKey: 'bob', campaign: 'a', outputTime: T0 + 40, status: 'suppressed' }),
        activation(7, { customerKey: 'carol', campaign: 'b', outputTime: T0 + 50 }),
      ])
      const keys = ['alice', 'bob', 'carol', 'dave']
      assert.deepEqual(
        Object.fromEntries(await store.countRecent({ customerKeys: keys, campaign: 'a', since: T0 })),
        { alice: 2, bob: 0, carol: 0, dave: 0 },
      )
      assert.deepEqual(
        Object.fromEntries(await store.countRecent({ customerKeys: keys, since: T0 })),
        { alice: 3, bob: 0, carol: 1, dave: 0 },
        'without a campaign: every campaign',
      )
      assert.deepEqual(
        Object.fromEntries(await store.countRecent({ customerKeys: keys, since: T0 - 1, campaign: 'a' })),
        { alice: 3, bob: 0, carol: 0, dave: 0 },
        'since is inclusive',
      )
      assert.deepEqual(
        Object.fromEntries(
          await store.countRecent({
            customerKeys: ['alice', 'bob'],
            since: T0,
            statuses: ['holdout', 'suppressed'],
          }),
        ),
        { alice: 1, bob: 1 },
      )
      assert.equal((await store.countRecent({ customerKeys: [], since: 0 })).size, 0)
      const many = range(5000).map((i) => `k${i}`)
      const counts = await store.countRecent({ customerKeys: [...many, 'alice'], since: T0 })
      assert.equal(counts.size, 5001)
      assert.equal(counts.get('alice'), 3)
    })

    it('registers export consumers; an unknown one is a clear error', async () => {
      await clear()
      await store.append(range(3).map((i) => activation(i)))
      const a = await store.addConsumer('crm-loader')
      assert.equal(a.watermark, 0)
      const b = await store.addConsumer('late', { fromNow: true })
      assert.equal(b.watermark, await store.maxSeq())
      await assert.rejects(store.addConsumer('crm-loader'), rejectsWith('RIFFLE_CONFLICT'))
      await assert.rejects(store.addConsumer('../x'), rejectsWith('RIFFLE_BAD_REQUEST'))
      await assert.rejects(store.requireConsumer('nobody'), (e) => {
        rejectsWith('RIFFLE_UNKNOWN_CONSUMER')(e)
        assert.match((e as Error).message, /riffle history consumers add nobody/)
        return true
      })
      assert.deepEqual(
        (await store.listConsumers()).map((c) => c.name),
        ['crm-loader', 'late'],
      )
      await store.removeConsumer('late')
      await store.removeConsumer('crm-loader')
      await assert.rejects(store.removeConsumer('late'), rejectsWith('RIFFLE_UNKNOWN_CONSUMER'))
    })

    it('keeps a pending export range until it is confirmed, and confirms it only once', async () => {
      await clear()
      await store.append(range(10).map((i) => activation(i)))
      await store.addConsumer('pend')
      const max = await store.maxSeq()
      const first = await store.beginExport('pend', max - 5)
      assert.deepEqual(first, { from: 0, to: max - 5 })
      const again = await store.beginExport('pend', max)
      assert.deepEqual(again, first, 'a pending range is resumed unchanged')
      assert.equal(await store.completeExport('pend', 0, max - 5, 5), true)
      assert.equal(await store.completeExport('pend', 0, max - 5, 5), false)
      const c = await store.requireConsumer('pend')
      assert.equal(c.watermark, max - 5)
      assert.equal(c.pendingTo, null)
      assert.equal(c.exported, 5)
      await store.removeConsumer('pend')
    })

    it('purges past retention only what every consumer has exported, and says who holds the rest', async () => {
      await clear()
      await store.append(range(10).map((i) => activation(i)))
      const cutoff = T0 + 6_000 // records 0-5 are older
      const seqOf = async (i: number) => (await store.get(activation(i).id))!.seq
      await store.addConsumer('fast')
      await store.addConsumer('slow')
      await store.beginExport('fast', await seqOf(9))
      await store.completeExport('fast', 0, await seqOf(9), 10)
      await store.beginExport('slow', await seqOf(2))
      await store.completeExport('slow', 0, await seqOf(2), 3)

      const r1 = await store.purge(cutoff)
      assert.deepEqual(r1, { purged: 3, blocked: 3, blockedBy: ['slow'] })
      assert.equal(await count(), 7)
      assert.equal(await store.get(activation(3).id).then((r) => r?.content.offer_code), 'THX-3')

      await store.removeConsumer('slow')
      const r2 = await store.purge(cutoff)
      assert.deepEqual(r2, { purged: 3, blocked: 0, blockedBy: [] })
      assert.equal(await count(), 4)
      await store.removeConsumer('fast')

      const r3 = await store.purge(cutoff + 100_000)
      assert.equal(r3.purged, 4, 'with no consumer registered, retention alone decides')
      assert.equal(await count(), 0)
    })

    it('reads ranges in insertion order in bounded chunks, with filters', async () => {
      await clear()
      await store.append(
        range(25).map((i) =>
          activation(i, { campaign: i % 2 ? 'odd' : 'even', outputTime: T0 + (25 - i) * 1000 }),
        ),
      )
      const chunks: number[][] = []
      for await (const rows of store.scan({ afterSeq: 0 }, 10)) chunks.push(rows.map((r) => r[0]))
      assert.deepEqual(
        chunks.map((c) => c.length),
        [10, 10, 5],
      )
      const flat = chunks.flat()
      assert.deepEqual(
        flat,
        [...flat].sort((a, b) => a - b),
      )
      assert.equal(await store.count({ afterSeq: 0 }), 25)
      assert.equal(await store.count({ afterSeq: 0, campaign: 'odd' }), 12)
      const since = T0 + 5_000
      const until = T0 + 15_000
      let n = 0
      for await (const rows of store.scan({ afterSeq: 0, since, until, campaign: 'even' }, 3))
        for (const r of rows) {
          assert.equal(r[2], 'even')
          assert.ok(r[12] >= since && r[12] < until)
          n++
        }
      assert.equal(n, 5)
      assert.equal(await store.count({ afterSeq: 0, since, until, campaign: 'even' }), 5)
      assert.equal(await store.count({ afterSeq: 0, since: T0 + 999_000 }), 0)
    })

    it('takes concurrent appends from many callers without losing or duplicating any', async () => {
      await clear()
      const batches = range(8).map((b) => range(250, b * 250).map((i) => activation(i)))
      const results = await Promise.all([...batches, ...batches].map((b) => store.append(b)))
      assert.equal(
        results.reduce((s, r) => s + r.appended, 0),
        2000,
      )
      assert.equal(await count(), 2000)
    })
  })
}
