import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { openDatabase, type SqlDatabase } from '../../src/db/sql.js'
import { DefinitionsService } from '../../src/definitions/service.js'
import { parseDefinitionsText } from '../../src/definitions/source.js'
import { DefinitionsStore } from '../../src/definitions/store.js'
import { freshPostgresDatabase, tempDir } from '../helpers.js'

const EXAMPLE = readFileSync(new URL('../../examples/definitions.yaml', import.meta.url), 'utf8')
const src = (text: string) => parseDefinitionsText(text, 'defs.yaml')

const backends: Array<{ name: string; open: () => Promise<{ db: SqlDatabase; done: () => Promise<void> }> }> =
  [
    {
      name: 'SQLite',
      open: async () => {
        const tmp = tempDir()
        const db = await openDatabase('sqlite:', tmp.dir)
        return { db, done: async () => tmp.cleanup() }
      },
    },
    {
      name: 'PostgreSQL',
      open: async () => {
        const pg = await freshPostgresDatabase()
        const db = await openDatabase(pg.url, '/nonexistent')
        return { db, done: pg.drop }
      },
    },
  ]

for (const backend of backends) {
  describe(`definitions store on ${backend.name}`, () => {
    let db: SqlDatabase
    let done: () => Promise<void>
    let defs: DefinitionsService

    before(async () => {
      ;({ db, done } = await backend.open())
      defs = new DefinitionsService(await DefinitionsStore.open(db))
    })
    after(async () => {
      await db.close()
      await done()
    })

    it('applies the example, then re-applies it without change (idempotent)', async () => {
      const first = await defs.apply(src(EXAMPLE), { actor: 'test:a' })
      assert.deepEqual(first.created.sort(), [
        'campaign big-spender-thanks',
        'campaign nightly-scores',
        'collection profile',
        'stream purchases',
      ])
      const again = await defs.apply(src(EXAMPLE), { actor: 'test:a' })
      assert.deepEqual([again.created, again.updated, again.deleted], [[], [], []])
      assert.equal(again.unchanged, 4)
      assert.equal(again.revision, first.revision, 'an unchanged apply does not move the revision')
    })

    it('records a new version for each change, with when and by whom; old versions stay readable', async () => {
      await defs.apply(src(EXAMPLE.replace('holdout: 10', 'holdout: 20')), { actor: 'test:b' })
      const versions = await defs.store.versions('campaign', 'big-spender-thanks')
      assert.equal(versions.length, 2)
      assert.equal(versions[0]!.version, 2)
      assert.equal(versions[0]!.createdBy, 'test:b')
      assert.equal(versions[1]!.createdBy, 'test:a')
      assert.ok(Date.parse(versions[0]!.createdAt) >= Date.parse(versions[1]!.createdAt))
      const v1 = await defs.store.version('campaign', 'big-spender-thanks', 1)
      assert.equal((v1!.spec as { cells: { holdout: number } }).cells.holdout, 10)
      const current = await defs.get('campaign', 'big-spender-thanks')
      assert.equal((current.spec as { cells: { holdout: number } }).cells.holdout, 20)
    })

    it('applies nothing when any part of the file is invalid (atomic)', async () => {
      const before = await defs.exportYaml()
      const broken = EXAMPLE.replace('holdout: 10', 'holdout: 30').replace(
        '"THX-" + event.order_id',
        'event.no_such_field',
      )
      await assert.rejects(defs.apply(src(broken), { actor: 'test:c' }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'RIFFLE_INVALID_DEFINITION')
        assert.match(e.message, /no_such_field/)
        return true
      })
      assert.equal(await defs.exportYaml(), before)
    })

    it('exports definitions that round-trip through apply', async () => {
      const exported = await defs.exportYaml()
      const s = await defs.apply(src(exported), { actor: 'test:d' })
      assert.deepEqual([s.created, s.updated, s.deleted], [[], [], []])
      assert.match(exported, /^streams:\n {2}- name: purchases\n {4}topic: shop.purchases/)
    })

    it('prunes what the file no longer has, and only with --prune', async () => {
      const withoutNightly = EXAMPLE.slice(0, EXAMPLE.indexOf('  - name: nightly-scores'))
      const kept = await defs.apply(src(withoutNightly), { actor: 'test:e' })
      assert.deepEqual(kept.deleted, [])
      assert.ok(await defs.store.get('campaign', 'nightly-scores'))
      const pruned = await defs.apply(src(withoutNightly), { actor: 'test:e', prune: true })
      assert.deepEqual(pruned.deleted, ['campaign nightly-scores'])
      assert.equal(await defs.store.get('campaign', 'nightly-scores'), undefined)
      assert.equal((await defs.store.versions('campaign', 'nightly-scores'))[0]!.deleted, true)
    })

    it('validates a partial file against what is already applied', async () => {
      const onlyCampaign = `campaigns:
  - name: second
    trigger: { stream: purchases }
    outputs:
      - pull: { collection: profile, key: event.customer_id, set: { segment: '"buyer"' } }
`
      const s = await defs.apply(src(onlyCampaign), { actor: 'test:f' })
      assert.deepEqual(s.created, ['campaign second'])
      assert.equal(((await defs.get('campaign', 'second')).spec as { status: string }).status, 'active')
    })

    it('refuses to delete a stream that a campaign uses, and to prune it away', async () => {
      await assert.rejects(defs.remove('stream', 'purchases', 'test:g'), /still in use/)
      await assert.rejects(
        defs.apply(src(EXAMPLE.slice(EXAMPLE.indexOf('collections:'))), { actor: 'test:g', prune: true }),
        (e: Error & { code?: string }) =>
          e.code === 'RIFFLE_INVALID_DEFINITION' && /unknown stream "purchases"/.test(e.message),
      )
      assert.ok(await defs.store.get('stream', 'purchases'))
    })

    it('activates and pauses a campaign as new versions', async () => {
      const paused = await defs.setStatus('second', 'paused', 'test:h')
      assert.equal((paused.spec as { status: string }).status, 'paused')
      const again = await defs.setStatus('second', 'paused', 'test:h')
      assert.equal(again.version, paused.version, 'pausing a paused campaign makes no new version')
      const active = await defs.setStatus('second', 'active', 'test:h')
      assert.equal(active.version, paused.version + 1)
    })

    it('says which paused campaigns a file makes active again, dry run included', async () => {
      await defs.apply(src(EXAMPLE), { actor: 'test:r' })
      await defs.setStatus('big-spender-thanks', 'paused', 'test:r')
      const dry = await defs.apply(src(EXAMPLE), { actor: 'test:r', dryRun: true })
      assert.deepEqual(dry.resumed, ['campaign "big-spender-thanks" (was paused)'])
      const applied = await defs.apply(src(EXAMPLE), { actor: 'test:r' })
      assert.deepEqual(applied.resumed, ['campaign "big-spender-thanks" (was paused)'])
      assert.deepEqual(applied.updated, ['campaign big-spender-thanks'])
      const again = await defs.apply(src(EXAMPLE), { actor: 'test:r' })
      assert.deepEqual(again.resumed, [], 'active already: nothing to say')
    })

    it('serialises concurrent applies: both land, versions do not collide', async () => {
      const a = EXAMPLE.replace('holdout: 10', 'holdout: 41')
      const b = EXAMPLE.replace('holdout: 10', 'holdout: 42')
      const before = (await defs.store.versions('campaign', 'big-spender-thanks')).length
      await Promise.all([defs.apply(src(a), { actor: 'x' }), defs.apply(src(b), { actor: 'y' })])
      const versions = await defs.store.versions('campaign', 'big-spender-thanks')
      assert.equal(versions.length, before + 2)
      assert.deepEqual(new Set(versions.map((v) => v.version)).size, versions.length)
    })

    it('gives the engine a compiled snapshot that follows the revision', async () => {
      const s1 = await defs.snapshot()
      assert.ok(s1.compiled.get('big-spender-thanks'))
      const where = s1.compiled.get('big-spender-thanks')!.where!
      assert.equal(where({ event: { amount: 150 }, profile: null }), true)
      assert.equal(where({ event: { amount: 150 }, profile: { segment: 'staff' } }), false)
      assert.equal(await defs.snapshot(), s1, 'unchanged revision: same snapshot object')
      await defs.setStatus('big-spender-thanks', 'paused', 'test:i')
      const s2 = await defs.snapshot()
      assert.notEqual(s2, s1)
      assert.ok(s2.revision > s1.revision)
    })
  })
}
