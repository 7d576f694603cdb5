/**
 * The embedded DuckDB data store: audience SQL reads the data store's tables and nothing else (no
 * files, no network), while loading CSV and Parquet files still works.
 */
import assert from 'node:assert/strict'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { DuckDBInstance } from '@duckdb/node-api'
import { type Harness, openHarness } from '../scheduler/harness.js'

describe('DuckDB data store', () => {
  let h: Harness
  before(async () => {
    h = await openHarness()
    writeFileSync(join(h.dir, 'c.csv'), 'customer_id,amount\na,1\nb,2\nc,3\n')
  })
  after(async () => h?.close())

  const drain = async (sql: string) => {
    const rows: Array<Record<string, unknown>> = []
    for await (const b of h.datastore.query(sql)) rows.push(...b.rows)
    return rows
  }
  const refused = (path: string) =>
    new RegExp(
      `the audience may read only the data store's tables, not files or the network: it tried to read "${path.replace(/[.*/]/g, '\\$&')}"; load a file with \`riffle datastore load TABLE FILE\``,
    )

  it('loads a CSV file through its own reader, replacing or appending, with progress', async () => {
    const progress: Array<{ rows: number; percent: number }> = []
    assert.deepEqual(
      await h.datastore.load('customers', join(h.dir, 'c.csv'), { onProgress: (p) => progress.push(p) }),
      { rows: 3 },
    )
    assert.deepEqual(progress[progress.length - 1], { rows: 3, percent: 100 })
    assert.deepEqual(await h.datastore.load('customers', join(h.dir, 'c.csv'), { replace: false }), {
      rows: 3,
    })
    assert.deepEqual(await drain('select count(*)::integer as n from customers'), [{ n: 6 }])
    assert.deepEqual(await h.datastore.load('customers', join(h.dir, 'c.csv')), { rows: 3 })
    assert.deepEqual(await drain('select customer_id, amount from customers order by 1'), [
      { customer_id: 'a', amount: 1n },
      { customer_id: 'b', amount: 2n },
      { customer_id: 'c', amount: 3n },
    ])
    // no staging table is left behind or listed
    assert.deepEqual(
      (await h.datastore.tables()).map((t) => t.name),
      ['customers'],
    )
    assert.deepEqual(
      await drain(
        "select count(*)::integer as n from information_schema.tables where table_name like '%riffle_load%'",
      ),
      [{ n: 0 }],
    )
  })

  it('loads Parquet with decimals, lists, structs and timestamps, and appends with casts', async () => {
    const file = join(h.dir, 'orders.parquet')
    const duck = await DuckDBInstance.create(':memory:')
    const c = await duck.connect()
    await c.run(
      `copy (select i as order_id, (i * 1.25)::decimal(10,2) as total, [i, i + 1] as items,
              {'sku': 'p' || i, 'qty': i} as line, timestamp '2025-01-01 10:00:00' + to_days(i::integer) as at
             from range(1, 2501) t(i)) to '${file}' (format parquet)`,
    )
    c.closeSync()
    duck.closeSync()
    assert.deepEqual(await h.datastore.load('orders', file), { rows: 2500 })
    const orders = (await h.datastore.tables()).find((t) => t.name === 'orders')!
    assert.deepEqual(
      orders.columns.map((x) => [x.name, x.type]),
      [
        ['order_id', 'BIGINT'],
        ['total', 'DECIMAL(10,2)'],
        ['items', 'BIGINT[]'],
        ['line', 'STRUCT(sku VARCHAR, qty BIGINT)'],
        ['at', 'TIMESTAMP'],
      ],
    )
    const [row] = await drain('select * from orders where order_id = 2')
    assert.deepEqual(row, {
      order_id: 2n,
      total: 2.5,
      items: [2n, 3n],
      line: { sku: 'p2', qty: 2n },
      at: new Date('2025-01-03T10:00:00Z'),
    })
    // append a CSV whose columns are cast to the table's types, or refused naming the problem
    writeFileSync(join(h.dir, 'more.csv'), 'customer_id,amount\nd,4.0\n')
    assert.deepEqual(await h.datastore.load('customers', join(h.dir, 'more.csv'), { replace: false }), {
      rows: 1,
    })
    writeFileSync(join(h.dir, 'bad.csv'), 'customer_id,amount\ne,lots\n')
    await assert.rejects(
      h.datastore.load('customers', join(h.dir, 'bad.csv'), { replace: false }),
      /cannot append .*bad\.csv to customers: Conversion Error: .*lots/,
    )
    assert.deepEqual(await drain('select count(*)::integer as n from customers'), [{ n: 4 }])
    await assert.rejects(
      h.datastore.load('customers', join(h.dir, 'nope.csv')),
      /cannot load .*nope\.csv into customers: IO Error: No files found/,
    )
  })

  it('refuses audience SQL that reads a file, naming it and what to do instead', async () => {
    await assert.rejects(drain("select * from read_csv('/etc/passwd')"), refused('/etc/passwd'))
    await assert.rejects(drain(`select * from '${join(h.dir, 'c.csv')}'`), refused(join(h.dir, 'c.csv')))
    await assert.rejects(
      drain("select * from read_parquet('https://example.com/x.parquet')"),
      refused('https://example.com/x.parquet'),
    )
    await assert.rejects(drain("select * from glob('/etc/*')"), refused('/etc/*'))
    await assert.rejects(drain("select * from read_text('/etc/hostname')"), refused('/etc/hostname'))
    await assert.rejects(drain("select * from sniff_csv('/etc/passwd')"), refused('/etc/passwd'))
    // statements other than SELECT are refused before they run
    await assert.rejects(drain(`copy customers to '${join(h.dir, 'out.csv')}'`), /read-only SQL query/)
    await assert.rejects(drain(`attach '${join(h.dir, 'x.duckdb')}' as x`), /read-only SQL query/)
    await assert.rejects(drain('set enable_external_access = true'), /read-only SQL query/)
    assert.equal(existsSync(join(h.dir, 'out.csv')), false)
    assert.equal(existsSync(join(h.dir, 'x.duckdb')), false)
  })

  it('a campaign whose audience reads /etc/passwd fails, naming the file, and writes nothing', async () => {
    await h.apply(`
collections:
  - name: leak
    key: customer_id
    fields: [ { name: line, type: string } ]
campaigns:
  - name: passwd
    trigger: { manual: true }
    audience: { sql: "select column0 as customer_id, column0 as line from read_csv('/etc/passwd', header = false)" }
    outputs:
      - pull: { collection: leak, key: row.customer_id, set: { line: row.line } }
`)
    const s = await h.scheduler()
    const r = await (await s.runNow('passwd')).done
    assert.equal(r.status, 'failed')
    assert.equal(
      r.message,
      'the audience may read only the data store\'s tables, not files or the network: it tried to read "/etc/passwd"; load a file with `riffle datastore load TABLE FILE` and select from the table',
    )
    assert.deepEqual(r.outputs, {})
    assert.equal(r.rowsSelected, null)
  })
})
