/**
 * The data store on PostgreSQL (RIFFLE_DATASTORE_URL=postgres://…), on a fresh database: loading
 * CSV and Parquet, the schema API, read-only batched queries, and a scheduled-campaign run over it
 * that writes the Pull Marketing database.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { DuckDBInstance } from '@duckdb/node-api'
import pg from 'pg'
import type { DataStore } from '../../src/datastore/store.js'
import { openDataStore } from '../../src/datastore/store.js'
import { freshPostgresDatabase } from '../helpers.js'
import { type Harness, openHarness } from '../scheduler/harness.js'

const ROWS = 12_345

describe('PostgreSQL data store', () => {
  let db: Awaited<ReturnType<typeof freshPostgresDatabase>>
  let h: Harness
  let store: DataStore
  let csv: string

  before(async () => {
    db = await freshPostgresDatabase()
    h = await openHarness({ RIFFLE_DATASTORE_URL: db.url })
    store = h.datastore
    let text = 'customer_id,amount,score,name,active,signed_up\n'
    for (let i = 1; i <= ROWS; i++)
      text += `${i},${i % 100},${(i % 7) / 4},name ${i},${i % 3 === 0},2025-0${(i % 9) + 1}-15\n`
    csv = join(h.dir, 'customers.csv')
    writeFileSync(csv, text)
  })
  after(async () => {
    await h?.close()
    await db?.drop()
  })

  it('is the PostgreSQL backend, and hides the password', () => {
    assert.equal(store.kind, 'postgres')
    assert.match(store.description, /^postgres(ql)?:\/\//)
    assert.doesNotMatch(store.description, new RegExp(`:${new URL(db.url).password}@`))
  })

  it("refuses to run SQL as a user that can reach the server's files, unless told to accept it", async () => {
    const drain = async (s: DataStore, sql: string) => {
      for await (const _ of s.query(sql)) {
      }
    }
    // the data store's own user is no superuser: PostgreSQL itself keeps it from the files
    await assert.rejects(
      drain(store, "select pg_read_file('/etc/hostname')"),
      /data store query failed: permission denied for function pg_read_file/,
    )
    const su = await openDataStore(db.superuserUrl, h.dir)
    try {
      await assert.rejects(
        drain(su, 'select 1 as one'),
        /PostgreSQL user "riffle" is a superuser, so SQL run as it can read files on the database server; connect as a user without those rights .* or set RIFFLE_DATASTORE_ALLOW_FILE_ACCESS=true/,
      )
    } finally {
      await su.close()
    }
    const role = new URL(db.url).username
    const admin = new pg.Client({ connectionString: db.superuserUrl })
    await admin.connect()
    await admin.query(`grant pg_read_server_files to ${role}`)
    const member = await openDataStore(db.url, h.dir)
    try {
      await assert.rejects(drain(member, 'select 1 as one'), /is a member of pg_read_server_files/)
    } finally {
      await member.close()
      await admin.query(`revoke pg_read_server_files from ${role}`)
      await admin.end()
    }
    const accepted = await openDataStore(db.superuserUrl, h.dir, { allowFileAccess: true })
    try {
      let one = 0
      for await (const b of accepted.query('select 1 as one')) one = Number(b.rows[0]!.one)
      assert.equal(one, 1)
    } finally {
      await accepted.close()
    }
  })

  it('loads a CSV file with typed columns, reporting progress and the row count', async () => {
    const progress: number[] = []
    const { rows } = await store.load('customers', csv, { onProgress: (p) => progress.push(p.percent) })
    assert.equal(rows, ROWS)
    assert.equal(progress[progress.length - 1], 100)
    assert.ok(progress.length >= 2, `progress ${progress}`)
    // the rows are in PostgreSQL, typed
    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    try {
      const r = await c.query(
        'select count(*)::int as n, sum(amount)::int as s, count(*) filter (where active)::int as a from customers',
      )
      assert.deepEqual(r.rows[0], {
        n: ROWS,
        s: Array.from({ length: ROWS }, (_, i) => (i + 1) % 100).reduce((a, b) => a + b, 0),
        a: Math.floor(ROWS / 3),
      })
    } finally {
      await c.end()
    }
  })

  it('lists tables with columns, backend types and portable kinds', async () => {
    const tables = await store.tables()
    assert.deepEqual(tables, [
      {
        name: 'customers',
        columns: [
          { name: 'customer_id', type: 'bigint', kind: 'integer' },
          { name: 'amount', type: 'bigint', kind: 'integer' },
          { name: 'score', type: 'double precision', kind: 'number' },
          { name: 'name', type: 'text', kind: 'string' },
          { name: 'active', type: 'boolean', kind: 'boolean' },
          { name: 'signed_up', type: 'date', kind: 'timestamp' },
        ],
      },
    ])
  })

  it('appends with replace: false, replaces by default, and loads Parquet', async () => {
    const extra = join(h.dir, 'extra.csv')
    writeFileSync(extra, 'customer_id,amount,score,name,active,signed_up\n99999,5,0.5,x,true,2025-01-01\n')
    assert.equal((await store.load('customers', extra, { replace: false })).rows, 1)
    let n = 0
    for await (const b of store.query('select count(*) as n from customers')) n = Number(b.rows[0]!.n)
    assert.equal(n, ROWS + 1)
    assert.equal((await store.load('customers', csv)).rows, ROWS)

    const parquet = join(h.dir, 'orders.parquet')
    const duck = await DuckDBInstance.create(':memory:')
    const conn = await duck.connect()
    await conn.run(
      `copy (select i as order_id, (i % 50) + 1 as customer_id, i * 1.5 as total from range(1, 1001) t(i)) to '${parquet}' (format parquet)`,
    )
    conn.closeSync()
    duck.closeSync()
    assert.equal((await store.load('orders', parquet)).rows, 1000)
    const orders = (await store.tables()).find((t) => t.name === 'orders')
    assert.deepEqual(
      orders?.columns.map((c) => [c.name, c.kind]),
      [
        ['order_id', 'integer'],
        ['customer_id', 'integer'],
        ['total', 'number'],
      ],
    )
  })

  it('streams a query in batches, the first carrying the columns even with no rows', async () => {
    const sizes: number[] = []
    let last: unknown
    for await (const b of store.query('select customer_id from customers order by customer_id', {
      batchSize: 5000,
    })) {
      sizes.push(b.rows.length)
      last = b.rows[b.rows.length - 1]?.customer_id
    }
    assert.deepEqual(sizes, [5000, 5000, 2345])
    assert.equal(last, BigInt(ROWS)) // bigint stays exact
    const empty: Array<{ cols: string[]; n: number }> = []
    for await (const b of store.query('select customer_id, name from customers where false'))
      empty.push({ cols: b.columns.map((c) => c.name), n: b.rows.length })
    assert.deepEqual(empty, [{ cols: ['customer_id', 'name'], n: 0 }])
  })

  it('refuses anything but a read-only query, naming the problem', async () => {
    const drain = async (sql: string) => {
      for await (const _ of store.query(sql)) {
      }
    }
    await assert.rejects(drain('delete from customers'), /read-only SQL query.*"delete from customers"/)
    await assert.rejects(
      drain('with gone as (delete from customers returning *) select * from gone'),
      /data store query failed: DECLARE CURSOR must not contain data-modifying statements/,
    )
    await assert.rejects(drain('select 1; drop table customers'), /data store query failed/)
    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    await c.query('create sequence if not exists riffle_seq')
    await c.end()
    await assert.rejects(
      drain("select nextval('riffle_seq')"),
      /data store query failed: cannot execute nextval\(\) in a read-only transaction/,
    )
    await assert.rejects(
      drain('select * from customers for update'),
      /data store query failed: cannot execute SELECT FOR UPDATE in a read-only transaction/,
    )
    await assert.rejects(drain('select nope from customers'), /data store query failed: column "nope"/)
    let n = 0
    for await (const b of store.query('select count(*) as n from customers')) n = Number(b.rows[0]!.n)
    assert.equal(n, ROWS)
  })

  it('rejects a bad file and a bad table name, naming them', async () => {
    await assert.rejects(store.load('customers', join(h.dir, 'missing.csv')), /cannot read .*missing\.csv/)
    await assert.rejects(store.load('bad name', csv), /invalid table name "bad name"/)
    await assert.rejects(store.load('customers', join(h.dir, 'x.json')), /cannot tell the format/)
  })

  it('runs a scheduled campaign over it that writes the Pull Marketing database', async () => {
    await h.apply(`
collections:
  - name: pgscores
    key: customer_id
    fields:
      - { name: score, type: number }
      - { name: band, type: string }
      - { name: orders, type: number }
campaigns:
  - name: pg-scores
    trigger: { manual: true }
    audience:
      sql: >-
        select c.customer_id, c.score * 2 as score, count(o.order_id) as orders
          from customers c left join orders o on o.customer_id = c.customer_id
         where c.active group by c.customer_id, c.score
    content:
      band: 'row.score >= 1.0 ? "high" : "low"'
    outputs:
      - pull: { collection: pgscores, key: string(row.customer_id), set: { score: row.score, band: content.band, orders: double(row.orders) } }
  - name: pg-text-score
    trigger: { manual: true }
    audience: { sql: "select customer_id, name from customers" }
    outputs:
      - pull: { collection: pgscores, key: string(row.customer_id), set: { score: row.name } }
`)
    const s = await h.scheduler({ batchSize: 1000 })
    // the column types come from PostgreSQL too: text into a number field fails before any read
    const bad = await (await s.runNow('pg-text-score')).done
    assert.equal(bad.status, 'failed')
    assert.equal(bad.rowsSelected, null)
    assert.deepEqual(bad.outputs, {})
    assert.match(
      bad.message!,
      /campaign "pg-text-score", outputs\[0\]\.pull\.set\.score: field "score" of collection "pgscores" is number, but `row\.name` has type string from column "name" \(text\)/,
    )
    const end = await (await s.runNow('pg-scores')).done
    const expected = Math.floor(ROWS / 3)
    assert.equal(end.status, 'succeeded', end.errors.join('; '))
    assert.equal(end.rowsSelected, expected)
    assert.equal(end.rowsDone, expected)
    assert.equal(end.batchesDone, Math.ceil(expected / 1000))
    assert.equal(end.outputs['pull:ok'], expected)
    // customer 6: active, score (6 % 7) / 4 = 1.5, doubled 3; orders 6, 56, 106, … 956: 20
    const r = await h.riffle.pull.get('pgscores', '6')
    assert.deepEqual(r?.fields, { score: 3, band: 'high', orders: 20 })
    assert.equal(await h.riffle.pull.get('pgscores', '7'), undefined) // not active
  })
})
