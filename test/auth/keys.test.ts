/** API keys are stored hashed: the database never holds a key's secret, on SQLite or PostgreSQL. */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { KeyStore } from '../../src/auth/keys.js'
import { openDatabase, type SqlDatabase } from '../../src/db/sql.js'
import { freshPostgresDatabase, tempDir } from '../helpers.js'

const backends: Array<{ name: string; open: () => Promise<{ db: SqlDatabase; done: () => Promise<void> }> }> =
  [
    {
      name: 'SQLite',
      open: async () => {
        const tmp = tempDir()
        return { db: await openDatabase('sqlite:', tmp.dir), done: async () => tmp.cleanup() }
      },
    },
    {
      name: 'PostgreSQL',
      open: async () => {
        const pg = await freshPostgresDatabase()
        return { db: await openDatabase(pg.url, '/nonexistent'), done: pg.drop }
      },
    },
  ]

for (const backend of backends) {
  describe(`API keys on ${backend.name}`, () => {
    let db: SqlDatabase
    let done: () => Promise<void>
    let keys: KeyStore
    before(async () => {
      ;({ db, done } = await backend.open())
      keys = await KeyStore.open(db)
    })
    after(async () => {
      await db.close()
      await done()
    })

    it('stores only the SHA-256 of the secret, and verifies the key against it', async () => {
      const { key, apiKey } = await keys.create(['admin'], 'ops')
      const [, id, secret] = /^rfl_([0-9a-f]{12})_(.+)$/.exec(key)!
      assert.equal(id, apiKey.id)
      const rows = await db.all<Record<string, unknown>>('select * from api_keys')
      assert.equal(rows.length, 1)
      const stored = JSON.stringify(rows)
      assert.ok(!stored.includes(secret!), 'the secret is not stored')
      assert.ok(!stored.includes(key), 'the key is not stored')
      assert.equal(rows[0]!.hash, createHash('sha256').update(secret!).digest('hex'))
      assert.deepEqual([...(await keys.verify(key))!.scopes], ['admin'])
      const forged = `rfl_${id}_${'A'.repeat(43)}`
      assert.equal(await keys.verify(forged), undefined)
    })
  })
}
