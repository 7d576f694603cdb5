/**
 * The pull-store contract: the same tests, unchanged, against every adapter on a real server
 * (SQLite file, FerretDB over the MongoDB wire protocol, Redis).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Collection } from '../../src/definitions/schema.js'
import { isRiffleError } from '../../src/errors.js'
import type { PullStore, PullWrite } from '../../src/pull/store.js'
import { uniqueName } from '../helpers.js'
import { BACKENDS } from './backends.js'

function profileCollection(name: string): Collection {
  return {
    name,
    key: 'customer_id',
    fields: [
      { name: 'first_name', type: 'string' },
      { name: 'segment', type: 'string' },
      { name: 'churn_score', type: 'number' },
      { name: 'visits', type: 'integer' },
      { name: 'vip', type: 'boolean' },
      { name: 'last_seen', type: 'timestamp' },
      { name: 'prefs', type: 'object' },
      { name: 'tags', type: 'array' },
    ],
  }
}

async function rejects(p: Promise<unknown>, code: string, mentions?: string): Promise<Error> {
  try {
    await p
  } catch (e) {
    assert.ok(isRiffleError(e), `expected a RiffleError, got ${String(e)}`)
    assert.equal(e.code, code, e.message)
    if (mentions) assert.match(e.message, new RegExp(mentions))
    return e
  }
  assert.fail(`expected ${code}`)
}

for (const backend of BACKENDS) {
  describe(`pull store contract: ${backend.name}`, () => {
    let store: PullStore
    let cleanup: (collections: string[]) => Promise<void>
    const P = uniqueName('profile')
    const T = uniqueName('ttl')
    const W = 'test:contract'
    const extra: string[] = []

    before(async () => {
      ;({ store, cleanup } = await backend.open())
      await store.prepare([
        profileCollection(P),
        {
          name: T,
          key: 'id',
          ttl: '1s',
          fields: [
            { name: 'a', type: 'string' },
            { name: 'b', type: 'string' },
          ],
        },
      ])
    })
    after(async () => {
      await cleanup([P, T, ...extra])
    })

    it('answers ping and names its kind', async () => {
      await store.ping()
      assert.equal(store.kind, backend.name)
    })

    it('gets a record, all fields or the requested ones; a missing key is undefined', async () => {
      await store.write(P, [
        { key: 'get-1', set: { first_name: 'Ada', segment: 'gold', churn_score: 0.25 }, writer: W },
      ])
      const r = await store.get(P, 'get-1')
      assert.deepEqual(r?.fields, { first_name: 'Ada', segment: 'gold', churn_score: 0.25 })
      assert.equal(r?.key, 'get-1')
      const some = await store.get(P, 'get-1', ['segment', 'visits'])
      assert.deepEqual(some?.fields, { segment: 'gold' })
      assert.equal(await store.get(P, 'get-missing'), undefined)
    })

    it('answers concurrent gets each with its own record and sees writes made before them; getJson agrees', async () => {
      const keys = Array.from({ length: 20 }, (_, i) => `conc-${i}`)
      await store.write(
        P,
        keys.map((k, i) => ({
          key: k,
          set: { visits: i, last_seen: '2025-01-02T03:04:05Z', prefs: { n: i }, tags: ['x'] },
          writer: W,
        })),
      )
      await store.write(T, [{ key: 'conc-t', set: { a: 'ttl' }, writer: W }])
      // Issued together, as the Pull API's requests arrive: the SQLite store answers them in one batch.
      const [rs, t, fields, unknown] = await Promise.all([
        Promise.all([...keys, 'conc-missing'].map((k) => store.get(P, k))),
        store.get(T, 'conc-t'),
        store.get(P, 'conc-7', ['visits']),
        store.get('no-such-collection', 'k').then(
          () => 'resolved',
          (e: unknown) => (isRiffleError(e) ? e.code : String(e)),
        ),
      ])
      assert.deepEqual(
        rs.map((r) => r?.fields.visits),
        [...keys.map((_, i) => i), undefined],
      )
      assert.deepEqual(rs[3]?.fields, {
        visits: 3,
        last_seen: '2025-01-02T03:04:05.000Z',
        prefs: { n: 3 },
        tags: ['x'],
      })
      assert.equal(t?.fields.a, 'ttl')
      assert.deepEqual(fields?.fields, { visits: 7 })
      assert.equal(unknown, 'RIFFLE_UNKNOWN_COLLECTION')
      await store.write(P, [{ key: 'conc-0', set: { visits: 100 }, writer: W }])
      assert.equal((await store.get(P, 'conc-0'))?.fields.visits, 100)
      if (store.getJson) {
        const [j, g, none] = await Promise.all([
          store.getJson(P, 'conc-3'),
          store.get(P, 'conc-3'),
          store.getJson(P, 'conc-missing'),
        ])
        assert.equal(none, undefined)
        assert.equal(j?.key, 'conc-3')
        assert.deepEqual(JSON.parse(j!.fieldsJson), g?.fields)
        assert.equal(new Date(j!.updatedAt).toISOString(), g?.updatedAt)
        await rejects(store.getJson('no-such-collection', 'k'), 'RIFFLE_UNKNOWN_COLLECTION')
      }
    })

    it('getMany answers in the order asked, with undefined for missing keys', async () => {
      await store.write(P, [
        { key: 'many-a', set: { segment: 'a' }, writer: W },
        { key: 'many-b', set: { segment: 'b' }, writer: W },
      ])
      const rs = await store.getMany(P, ['many-b', 'many-missing', 'many-a', 'many-b'])
      assert.deepEqual(
        rs.map((r) => r?.fields.segment),
        ['b', undefined, 'a', 'b'],
      )
      assert.deepEqual(await store.getMany(P, []), [])
    })

    it('sets fields as a field-level merge', async () => {
      await store.write(P, [{ key: 'merge', set: { segment: 'silver', first_name: 'Bo' }, writer: W }])
      await store.write(P, [{ key: 'merge', set: { churn_score: 0.9 }, writer: W }])
      assert.deepEqual((await store.get(P, 'merge'))?.fields, {
        segment: 'silver',
        first_name: 'Bo',
        churn_score: 0.9,
      })
    })

    it('unsets fields, by `unset` or by a null value', async () => {
      await store.write(P, [{ key: 'unset', set: { segment: 's', first_name: 'F', visits: 3 }, writer: W }])
      await store.write(P, [{ key: 'unset', unset: ['segment'], set: { first_name: null }, writer: W }])
      assert.deepEqual((await store.get(P, 'unset'))?.fields, { visits: 3 })
    })

    it('replaces an object field as a whole rather than merging into it', async () => {
      await store.write(P, [{ key: 'obj', set: { prefs: { email: true, sms: false } }, writer: W }])
      await store.write(P, [{ key: 'obj', set: { prefs: { push: true } }, writer: W }])
      assert.deepEqual((await store.get(P, 'obj'))?.fields, { prefs: { push: true } })
    })

    it('deletes a record; deleting an absent one is skipped', async () => {
      await store.write(P, [{ key: 'del', set: { segment: 'x' }, writer: W }])
      assert.deepEqual(await store.write(P, [{ key: 'del', delete: true, writer: W }]), {
        applied: 1,
        skipped: 0,
      })
      assert.equal(await store.get(P, 'del'), undefined)
      assert.deepEqual(await store.write(P, [{ key: 'del', delete: true, writer: W }]), {
        applied: 0,
        skipped: 1,
      })
    })

    it('writes a bulk batch, in order', async () => {
      const writes: PullWrite[] = Array.from({ length: 2500 }, (_, i) => ({
        key: `bulk-${String(i).padStart(5, '0')}`,
        set: { visits: i, segment: i % 2 ? 'odd' : 'even' },
        writer: W,
      }))
      // The same key twice in one batch: the later write wins.
      writes.push({ key: 'bulk-00007', set: { visits: 700, segment: 'late' }, writer: W })
      // A delete amid the sets applies in its place (Redis: between two bulk script calls).
      writes.splice(300, 0, { key: 'bulk-00010', delete: true, writer: W })
      assert.deepEqual(await store.write(P, writes), { applied: 2502, skipped: 0 })
      assert.equal(await store.get(P, 'bulk-00010'), undefined)
      assert.deepEqual(
        (await store.scan(P, { after: 'bulk-00009', limit: 2 })).records.map((r) => r.key),
        ['bulk-00011', 'bulk-00012'],
      )
      assert.equal((await store.scan(P, { after: 'bulk-02498', limit: 1 })).records[0]?.key, 'bulk-02499')
      const rs = await store.getMany(P, ['bulk-00000', 'bulk-01234', 'bulk-02499', 'bulk-00007'])
      assert.deepEqual(
        rs.map((r) => r?.fields),
        [
          { visits: 0, segment: 'even' },
          { visits: 1234, segment: 'even' },
          { visits: 2499, segment: 'odd' },
          { visits: 700, segment: 'late' },
        ],
      )
    })

    it('writes one batch over records that exist and records that do not, each as if alone', async () => {
      await store.write(P, [
        { key: 'ex-1', set: { segment: 'old', first_name: 'One' }, writer: W },
        { key: 'ex-2', set: { segment: 'old' }, eventTime: 2_000, writer: W },
      ])
      const r = await store.write(P, [
        { key: 'new-1', set: { segment: 'a' }, writer: W },
        { key: 'ex-1', set: { segment: 'new' }, writer: W },
        { key: 'new-1', set: { visits: 1 }, unset: ['segment'], writer: W },
        { key: 'ex-2', set: { segment: 'late' }, eventTime: 1_000, onlyIfNewer: true, writer: W },
        { key: 'new-2', set: { segment: 'b' }, eventTime: 5_000, writer: W },
        { key: 'new-2', set: { segment: 'older' }, eventTime: 4_000, onlyIfNewer: true, writer: W },
        { key: 'ex-1', unset: ['first_name'], writer: W },
      ])
      assert.deepEqual(r, { applied: 5, skipped: 2 })
      const rs = await store.getMany(P, ['new-1', 'ex-1', 'ex-2', 'new-2'])
      assert.deepEqual(
        rs.map((x) => x?.fields),
        [{ visits: 1 }, { segment: 'new' }, { segment: 'old' }, { segment: 'b' }],
      )
      assert.equal(rs[3]?.eventTime, 5_000)
    })

    it('applies a mixed batch of sets, unsets and deletes in order', async () => {
      const r = await store.write(P, [
        { key: 'mixed-a', set: { segment: 'one', first_name: 'A' }, writer: W },
        { key: 'mixed-a', delete: true, writer: W },
        { key: 'mixed-a', set: { visits: 2 }, writer: W },
        { key: 'mixed-b', set: { segment: 'b', first_name: 'B' }, writer: W },
        { key: 'mixed-b', unset: ['first_name'], writer: W },
        { key: 'mixed-b', set: { visits: 5 }, writer: W },
      ])
      assert.deepEqual(r, { applied: 6, skipped: 0 })
      const [a, b] = await store.getMany(P, ['mixed-a', 'mixed-b'])
      assert.deepEqual(a?.fields, { visits: 2 })
      assert.deepEqual(b?.fields, { segment: 'b', visits: 5 })
    })

    it('scans in key order with a cursor', async () => {
      const S = uniqueName('scan')
      extra.push(S)
      await store.prepare([profileCollection(P), profileCollection(S)])
      try {
        const keys = Array.from({ length: 25 }, (_, i) => `k${String(i).padStart(2, '0')}`)
        const shuffled = [...keys].sort(() => Math.random() - 0.5)
        await store.write(
          S,
          shuffled.map((k) => ({ key: k, set: { segment: k }, writer: W })),
        )
        const seen: string[] = []
        let after: string | undefined
        let pages = 0
        do {
          const page = await store.scan(S, { after, limit: 10 })
          assert.ok(page.records.length <= 10)
          for (const r of page.records) assert.equal(r.fields.segment, r.key)
          seen.push(...page.records.map((r) => r.key))
          after = page.next
          pages++
        } while (after !== undefined && pages < 10)
        assert.deepEqual(seen, keys)
        assert.equal(pages, 3)
        const tail = await store.scan(S, { after: 'k22', limit: 10 })
        assert.deepEqual(
          tail.records.map((r) => r.key),
          ['k23', 'k24'],
        )
        assert.equal(tail.next, undefined)
      } finally {
        await store.prepare([
          profileCollection(P),
          {
            name: T,
            key: 'id',
            ttl: '1s',
            fields: [
              { name: 'a', type: 'string' },
              { name: 'b', type: 'string' },
            ],
          },
        ])
      }
    })

    it('checks values against the declared types and coerces where safe', async () => {
      await store.write(P, [
        {
          key: 'types',
          set: {
            first_name: 42,
            churn_score: '0.5',
            visits: '17',
            vip: 'true',
            last_seen: '2025-03-01T10:00:00+01:00',
            prefs: '{"email":true}',
            tags: ['a', 'b'],
          },
          writer: W,
        },
      ])
      const r = await store.get(P, 'types')
      assert.deepEqual(r?.fields, {
        first_name: '42',
        churn_score: 0.5,
        visits: 17,
        vip: true,
        last_seen: '2025-03-01T09:00:00.000Z',
        prefs: { email: true },
        tags: ['a', 'b'],
      })
      await store.write(P, [{ key: 'types', set: { last_seen: 1700000000000, vip: false }, writer: W }])
      const r2 = await store.get(P, 'types', ['last_seen', 'vip'])
      assert.deepEqual(r2?.fields, { last_seen: '2023-11-14T22:13:20.000Z', vip: false })
    })

    it('rejects an unknown field, naming it', async () => {
      await rejects(
        store.write(P, [{ key: 'u', set: { favourite_colour: 'red' }, writer: W }]),
        'RIFFLE_BAD_REQUEST',
        'favourite_colour',
      )
      await rejects(store.write(P, [{ key: 'u', unset: ['nope'], writer: W }]), 'RIFFLE_BAD_REQUEST', 'nope')
      assert.equal(await store.get(P, 'u'), undefined)
    })

    it('rejects invalid values and keys, naming the field', async () => {
      await rejects(
        store.write(P, [{ key: 'bad', set: { visits: 1.5 }, writer: W }]),
        'RIFFLE_BAD_REQUEST',
        'visits',
      )
      await rejects(
        store.write(P, [{ key: 'bad', set: { churn_score: 'high' }, writer: W }]),
        'RIFFLE_BAD_REQUEST',
        'churn_score',
      )
      await rejects(
        store.write(P, [{ key: 'bad', set: { last_seen: 'yesterday' }, writer: W }]),
        'RIFFLE_BAD_REQUEST',
        'last_seen',
      )
      await rejects(
        store.write(P, [{ key: 'bad', set: { tags: { a: 1 } }, writer: W }]),
        'RIFFLE_BAD_REQUEST',
        'tags',
      )
      await rejects(
        store.write(P, [{ key: '', set: { segment: 'x' }, writer: W }]),
        'RIFFLE_BAD_REQUEST',
        'empty',
      )
      await rejects(
        store.write(P, [{ key: 'x'.repeat(257), set: { segment: 'x' }, writer: W }]),
        'RIFFLE_BAD_REQUEST',
        'longer',
      )
      assert.equal(await store.get(P, 'bad'), undefined)
    })

    it('a failed batch leaves no half-written record', async () => {
      await store.write(P, [{ key: 'atomic-2', set: { segment: 'before' }, writer: W }])
      await rejects(
        store.write(P, [
          { key: 'atomic-1', set: { segment: 'new' }, writer: W },
          { key: 'atomic-2', set: { segment: 'after', visits: 'many' }, writer: W },
          { key: 'atomic-3', set: { segment: 'new' }, writer: W },
        ]),
        'RIFFLE_BAD_REQUEST',
        'write 2 of 3.*visits',
      )
      const rs = await store.getMany(P, ['atomic-1', 'atomic-2', 'atomic-3'])
      assert.equal(rs[0], undefined)
      assert.deepEqual(rs[1]?.fields, { segment: 'before' })
      assert.equal(rs[2], undefined)
    })

    it('only-if-newer: a late, older event never overwrites newer data', async () => {
      const w = (segment: string, eventTime: number) => ({
        key: 'newer',
        set: { segment },
        eventTime,
        onlyIfNewer: true,
        writer: W,
      })
      assert.deepEqual(await store.write(P, [w('t2000', 2000)]), { applied: 1, skipped: 0 })
      assert.deepEqual(await store.write(P, [w('t1000', 1000)]), { applied: 0, skipped: 1 })
      let r = await store.get(P, 'newer')
      assert.equal(r?.fields.segment, 't2000')
      assert.equal(r?.eventTime, 2000)
      // Within one batch too, and a later event still applies.
      assert.deepEqual(await store.write(P, [w('t3000', 3000), w('t2500', 2500)]), { applied: 1, skipped: 1 })
      r = await store.get(P, 'newer')
      assert.equal(r?.fields.segment, 't3000')
      // An older conditional delete is skipped as well.
      assert.deepEqual(
        await store.write(P, [{ key: 'newer', delete: true, eventTime: 10, onlyIfNewer: true, writer: W }]),
        { applied: 0, skipped: 1 },
      )
      // An unconditional write always applies.
      await store.write(P, [{ key: 'newer', set: { segment: 'forced' }, eventTime: 5, writer: W }])
      r = await store.get(P, 'newer')
      assert.equal(r?.fields.segment, 'forced')
      assert.equal(r?.eventTime, 5)
      await rejects(
        store.write(P, [{ key: 'newer', set: { segment: 'x' }, onlyIfNewer: true, writer: W }]),
        'RIFFLE_BAD_REQUEST',
        'eventTime',
      )
    })

    it('keeps metadata: updatedAt and the writer', async () => {
      const t0 = Date.now()
      await store.write(P, [{ key: 'meta', set: { segment: 'm' }, writer: 'campaign:thanks@3' }])
      const t1 = Date.now()
      const r = await store.get(P, 'meta')
      assert.equal(r?.writer, 'campaign:thanks@3')
      const at = Date.parse(r!.updatedAt)
      assert.ok(at >= t0 && at <= t1, `${r?.updatedAt} not within the write`)
      assert.equal(r?.eventTime, undefined)
      await store.write(P, [{ key: 'meta', set: { visits: 1 }, writer: 'load:abc' }])
      assert.equal((await store.get(P, 'meta'))?.writer, 'load:abc')
    })

    it('keeps keys with any printable characters apart', async () => {
      const keys = ['a:b', 'a', 'a b', 'ünï/cødé', 'x"y\'z']
      await store.write(
        P,
        keys.map((k, i) => ({ key: k, set: { visits: i }, writer: W })),
      )
      const rs = await store.getMany(P, keys)
      assert.deepEqual(
        rs.map((r) => r?.fields.visits),
        [0, 1, 2, 3, 4],
      )
    })

    it('rejects a collection it was not prepared for', async () => {
      await rejects(store.get('no-such-collection', 'k'), 'RIFFLE_UNKNOWN_COLLECTION', 'no-such-collection')
      await rejects(
        store.write('no-such-collection', [{ key: 'k', set: {}, writer: W }]),
        'RIFFLE_UNKNOWN_COLLECTION',
      )
    })

    it('expires records not written for the TTL, and a write after expiry starts afresh', async () => {
      await store.write(T, [
        { key: 'e1', set: { a: 'old', b: 'old' }, writer: W },
        { key: 'e2', set: { a: 'x' }, writer: W },
      ])
      assert.equal((await store.get(T, 'e1'))?.fields.a, 'old')
      await sleep(1_300)
      assert.equal(await store.get(T, 'e1'), undefined)
      if (store.getJson) assert.equal(await store.getJson(T, 'e1'), undefined)
      assert.deepEqual(await store.getMany(T, ['e1', 'e2']), [undefined, undefined])
      assert.deepEqual((await store.scan(T, { limit: 10 })).records, [])
      await store.write(T, [{ key: 'e1', set: { a: 'new' }, writer: W }])
      assert.deepEqual((await store.get(T, 'e1'))?.fields, { a: 'new' })
      assert.deepEqual(
        (await store.scan(T, { limit: 10 })).records.map((r) => r.key),
        ['e1'],
      )
    })
  })
}
