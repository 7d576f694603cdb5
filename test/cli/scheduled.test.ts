/**
 * The scheduled-campaign commands of the built CLI: `riffle datastore load|query|tables`,
 * `riffle run CAMPAIGN`, `riffle runs list|show`, on the embedded stores of one data directory.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/log.js'
import { openRiffle } from '../../src/runtime.js'
import { tempDir } from '../helpers.js'

const BIN = fileURLToPath(new URL('../../bin/riffle.js', import.meta.url))

describe('riffle datastore, run and runs (the built package)', () => {
  const tmp = tempDir()
  after(() => tmp.cleanup())
  const riffle = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: {
        ...process.env,
        RIFFLE_DATA_DIR: join(tmp.dir, 'data'),
        RIFFLE_DATABASE_URL: '',
        RIFFLE_DATASTORE_URL: '',
        RIFFLE_PULLSTORE_URL: '',
        RIFFLE_LOG_LEVEL: 'warn',
      },
    })
    return { code: r.status, out: r.stdout, err: r.stderr }
  }
  const rows = 7500
  let csv = 'customer_id,amount,city\n'
  for (let i = 1; i <= rows; i++)
    csv += `c${String(i).padStart(5, '0')},${i % 100},${i % 2 ? 'Leeds' : 'York'}\n`
  writeFileSync(join(tmp.dir, 'customers.csv'), csv)
  writeFileSync(
    join(tmp.dir, 'riffle.yaml'),
    `collections:
  - name: cli_scores
    key: customer_id
    fields: [ { name: double_amount, type: number }, { name: city, type: string } ]
campaigns:
  - name: cli-doubler
    trigger: { manual: true }
    audience: { sql: "select customer_id, amount * 2.0 as d, city from customers" }
    outputs:
      - pull: { collection: cli_scores, key: row.customer_id, set: { double_amount: row.d, city: row.city } }
  - name: cli-broken
    trigger: { manual: true }
    audience: { sql: "select customer_id, nope from customers" }
    outputs:
      - pull: { collection: cli_scores, key: row.customer_id, set: { city: '"x"' } }
`,
  )

  it('datastore load: loads a CSV file, printing the row count; a missing file is named', () => {
    const r = riffle('datastore', 'load', 'customers', join(tmp.dir, 'customers.csv'))
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, new RegExp(`^loaded ${rows} rows into customers in \\d+\\.\\d s\\n$`))
    const appended = riffle('datastore', 'load', '--append', 'customers', join(tmp.dir, 'customers.csv'))
    assert.equal(appended.code, 0, appended.err)
    assert.match(appended.out, new RegExp(`^loaded ${rows} rows into customers`))
    const replaced = riffle('datastore', 'load', 'customers', join(tmp.dir, 'customers.csv'))
    assert.match(replaced.out, new RegExp(`^loaded ${rows} rows into customers`))
    const missing = riffle('datastore', 'load', 'customers', join(tmp.dir, 'nope.csv'))
    assert.equal(missing.code, 1)
    assert.match(missing.err, /RIFFLE_BAD_REQUEST: cannot load .*nope\.csv into customers/)
  })

  it('datastore query: prints a header and tab-separated rows; refuses what is not read-only', () => {
    const r = riffle(
      'datastore',
      'query',
      'select city, count(*) as n, sum(amount) as s from customers group by city order by city',
    )
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, 'city\tn\ts\nLeeds\t3750\t187500\nYork\t3750\t183750\n')
    assert.equal(
      riffle('datastore', 'query', 'select * from customers', '--limit', '2').out.split('\n').length,
      4,
    )
    assert.equal(
      riffle('datastore', 'query', 'select * from customers where false').out,
      'customer_id\tamount\tcity\n(no rows)\n',
    )
    const del = riffle('datastore', 'query', 'delete from customers')
    assert.equal(del.code, 1)
    assert.match(del.err, /RIFFLE_BAD_REQUEST: the audience must be a read-only SQL query/)
    const bad = riffle('datastore', 'query', 'select nope from customers')
    assert.equal(bad.code, 1)
    assert.match(bad.err, /data store query failed: .*nope/)
    assert.match(
      riffle('datastore', 'query', 'select count(*) as n from customers').out,
      new RegExp(`^n\\n${rows}\\n$`),
    )
  })

  it('datastore tables: lists columns and types', () => {
    const r = riffle('datastore', 'tables')
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, 'customers\tcustomer_id VARCHAR, amount BIGINT, city VARCHAR\n')
  })

  let runId = ''
  it('run: runs a campaign in the foreground with progress, prints the record, exits 0', async () => {
    assert.equal(riffle('apply', '-f', join(tmp.dir, 'riffle.yaml')).code, 0)
    const r = riffle('run', 'cli-doubler', '--batch', '3000')
    assert.equal(r.code, 0, r.err)
    const run = JSON.parse(r.out) as {
      id: string
      status: string
      rowsSelected: number
      rowsDone: number
      batchesDone: number
      outputs: Record<string, number>
    }
    runId = run.id
    assert.equal(run.status, 'succeeded')
    assert.equal(run.rowsSelected, rows)
    assert.equal(run.rowsDone, rows)
    assert.equal(run.batchesDone, 3)
    assert.equal(run.outputs['pull:ok'], rows)
    assert.match(r.err, new RegExp(`run ${run.id.replace(/\./g, '\\.')} started`))
    const progress = r.err.split('\n').filter((l) => l.startsWith(`${run.id}\trunning`))
    assert.deepEqual(
      progress.map((l) => l.split('\t')[4]),
      ['rows 3000/7500 (40%)', 'rows 6000/7500 (80%)', 'rows 7500/7500 (100%)'],
    )
    const stores = await openRiffle(
      loadConfig({ RIFFLE_DATA_DIR: join(tmp.dir, 'data') }),
      createLogger('silent'),
    )
    try {
      assert.deepEqual((await stores.pull.get('cli_scores', 'c00042'))?.fields, {
        double_amount: 84,
        city: 'York',
      })
    } finally {
      await stores.close()
    }
  })

  it('run: exits 1 with the failed record for SQL that fails, and names an unknown campaign', () => {
    const r = riffle('run', 'cli-broken')
    assert.equal(r.code, 1)
    const run = JSON.parse(r.out) as { status: string; message: string }
    assert.equal(run.status, 'failed')
    assert.match(run.message, /data store query failed: .*nope/)
    const unknown = riffle('run', 'nope')
    assert.equal(unknown.code, 1)
    assert.match(unknown.err, /RIFFLE_NOT_FOUND: no campaign "nope"/)
  })

  it('runs list and runs show: the records, newest first, filtered', () => {
    const list = riffle('runs', 'list')
    assert.equal(list.code, 0, list.err)
    const lines = list.out.trimEnd().split('\n')
    assert.equal(lines.length, 2)
    assert.match(lines[0]!, /^cli-broken\.manual\.\S+\tfailed\tmanual\t/)
    assert.equal(lines[1]!.split('\t')[0], runId)
    assert.match(lines[1]!, /\tsucceeded\tmanual\t.*\trows 7500\/7500 \(100%\)\tsent 7500$/)
    assert.equal(riffle('runs', 'list', '--status', 'succeeded').out.trimEnd().split('\n').length, 1)
    assert.equal(riffle('runs', 'list', '--campaign', 'nope').out, '')
    const show = riffle('runs', 'show', runId)
    assert.equal(show.code, 0, show.err)
    const run = JSON.parse(show.out) as { id: string; status: string; activations: Record<string, number> }
    assert.equal(run.id, runId)
    assert.equal(run.activations.sent, rows)
    const missing = riffle('runs', 'show', 'nope')
    assert.equal(missing.code, 1)
    assert.match(missing.err, /RIFFLE_NOT_FOUND: no run "nope"/)
  })
})
