import assert from 'node:assert/strict'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { SqliteDatabase } from '../../src/db/sql.js'
import { tempDir } from '../helpers.js'

test('WAL checkpoints happen in the background: the database file takes the pages without a commit checkpointing', async () => {
  const tmp = tempDir('riffle-ckpt-')
  const file = join(tmp.dir, 'x.db')
  const db = new SqliteDatabase(file)
  try {
    await db.withHandle((h) => {
      h.pragma('wal_autocheckpoint = 0') // this connection never checkpoints by itself
      h.exec('create table t (id integer primary key, v text)')
      const insert = h.prepare('insert into t (v) values (?)')
      h.transaction(() => {
        for (let i = 0; i < 20_000; i++) insert.run('x'.repeat(250))
      })()
    })
    const before = statSync(file).size
    assert.ok(before < 1_000_000, `the pages are still in the log only (${before} bytes)`)
    let after = before
    for (let i = 0; i < 50 && after < 5_000_000; i++) {
      await new Promise((r) => setTimeout(r, 100))
      after = statSync(file).size
    }
    assert.ok(after >= 5_000_000, `the checkpointer copied the log into the file (${after} bytes)`)
    assert.equal((await db.get<{ n: number }>('select count(*) as n from t'))?.n, 20_000)
  } finally {
    await db.close()
    tmp.cleanup()
  }
})
