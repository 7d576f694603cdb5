/**
 * `riffle datastore load` while `riffle start` runs on the same data directory: DuckDB lets one
 * process at a time open the data store file, so the CLI sends the file to the server's load route;
 * without a key it says so and how to fix it. With no server, a file held by another process is an
 * error naming that process.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { DuckDBInstance } from '@duckdb/node-api'
import { serviceUrl, tempDir } from '../helpers.js'

const BIN = fileURLToPath(new URL('../../bin/riffle.js', import.meta.url))

describe('riffle datastore load beside riffle start', () => {
  const tmp = tempDir()
  const data = join(tmp.dir, 'data')
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RIFFLE_DATA_DIR: data,
    RIFFLE_DATABASE_URL: '',
    RIFFLE_DATASTORE_URL: '',
    RIFFLE_PULLSTORE_URL: '',
    RIFFLE_ENGINE: 'off',
    RIFFLE_KAFKA_BROKERS: serviceUrl('RIFFLE_KAFKA_BROKERS'),
    RIFFLE_LOG_LEVEL: 'warn',
  }
  delete env.RIFFLE_API_KEY
  const riffle = (extra: NodeJS.ProcessEnv, ...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...env, ...extra } })
    return { code: r.status, out: r.stdout, err: r.stderr }
  }
  const csv = join(tmp.dir, 'customers.csv')
  writeFileSync(csv, 'customer_id,amount\na,1\nb,2\nc,3\n')
  let server: ChildProcess | undefined
  let url = ''
  let logs = ''

  before(async () => {
    const port = String(20000 + Math.floor(Math.random() * 20000))
    url = `http://127.0.0.1:${port}`
    server = spawn(process.execPath, [BIN, 'start'], {
      env: { ...env, RIFFLE_PORT: port },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    server.stdout!.on('data', (d) => (logs += d))
    server.stderr!.on('data', (d) => (logs += d))
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline && !existsSync(join(data, 'server.json')))
      await new Promise((r) => setTimeout(r, 100))
    assert.ok(existsSync(join(data, 'server.json')), `riffle start did not start: ${logs}`)
  })
  after(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM')
      await new Promise((r) => server!.once('exit', r))
    }
    tmp.cleanup()
  })

  it('without a key: refuses, naming the server and the fix', () => {
    const r = riffle({}, 'datastore', 'load', 'customers', csv)
    assert.equal(r.code, 1)
    assert.match(
      r.err,
      new RegExp(
        `RIFFLE_CONFLICT: riffle start \\(PID ${server!.pid}, ${url.replace(/[.]/g, '\\.')}\\) is running on this data directory and holds its DuckDB data store, which one process at a time may open; to load through it, set RIFFLE_API_KEY to a key with the admin scope \\(riffle keys create --scope admin\\) and run this again, or stop it first`,
      ),
    )
  })

  it('with an admin key: loads through the server, which then serves the table', async () => {
    const admin = riffle({}, 'keys', 'create', '--scope', 'admin').out.trim().split('\n').pop()!
    const r = riffle({ RIFFLE_API_KEY: admin }, 'datastore', 'load', 'customers', csv)
    assert.equal(r.code, 0, r.err)
    assert.match(
      r.out,
      new RegExp(
        `^loaded 3 rows into customers in \\d+\\.\\d s \\(through riffle start at ${url.replace(/[.]/g, '\\.')}\\)\\n$`,
      ),
    )
    const appended = riffle({}, 'datastore', 'load', '--append', '--key', admin, 'customers', csv)
    assert.equal(appended.code, 0, appended.err)
    const res = await fetch(`${url}/api/v1/datastore/tables`, {
      headers: { authorization: `Bearer ${admin}` },
    })
    const tables = (await res.json()) as { items: Array<{ name: string; columns: Array<{ name: string }> }> }
    assert.deepEqual(
      tables.items.map((t) => [t.name, t.columns.map((c) => c.name)]),
      [['customers', ['customer_id', 'amount']]],
    )
    // the server's own view of the rows: a manual run over them
    const apply = await fetch(`${url}/api/v1/definitions/apply`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/yaml' },
      body: `collections:\n  - { name: amounts, key: customer_id, fields: [ { name: amount, type: number } ] }\ncampaigns:\n  - name: count-them\n    trigger: { manual: true }\n    audience: { sql: "select customer_id, sum(amount) as amount from customers group by customer_id" }\n    outputs:\n      - pull: { collection: amounts, key: row.customer_id, set: { amount: row.amount } }\n`,
    })
    assert.equal(apply.status, 200, await apply.text())
    const run = (await (
      await fetch(`${url}/api/v1/campaigns/count-them/run`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}` },
      })
    ).json()) as { id: string }
    let status = 'running'
    let rowsDone = 0
    for (let i = 0; i < 200 && status === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 50))
      const got = (await (
        await fetch(`${url}/api/v1/runs/${run.id}`, { headers: { authorization: `Bearer ${admin}` } })
      ).json()) as { status: string; rowsDone: number }
      status = got.status
      rowsDone = got.rowsDone
    }
    assert.equal(status, 'succeeded')
    assert.equal(rowsDone, 3)
    // uploads do not stay on the server's disk
    assert.deepEqual(readdirSync(join(data, 'uploads')), [])
  })

  it('through the server: problems name the file as the user gave it, and the scope', () => {
    const admin = riffle({}, 'keys', 'create', '--scope', 'admin').out.trim().split('\n').pop()!
    const bad = join(tmp.dir, 'bad.csv')
    writeFileSync(bad, 'customer_id,amount\nd,lots\n')
    const r = riffle({ RIFFLE_API_KEY: admin }, 'datastore', 'load', '--append', 'customers', bad)
    assert.equal(r.code, 1)
    assert.match(
      r.err,
      new RegExp(
        `RIFFLE_BAD_REQUEST: riffle start at ${url.replace(/[.]/g, '\\.')}: cannot append bad\\.csv to customers: Conversion Error: Could not convert string 'lots'`,
      ),
    )
    assert.doesNotMatch(r.err, /uploads/)
    const ingest = riffle({}, 'keys', 'create', '--scope', 'ingest').out.trim().split('\n').pop()!
    const forbidden = riffle({ RIFFLE_API_KEY: ingest }, 'datastore', 'load', 'customers', csv)
    assert.equal(forbidden.code, 1)
    assert.match(forbidden.err, /RIFFLE_FORBIDDEN: riffle start at .*: the API key lacks the scope "admin"/)
    const wrongName = riffle({ RIFFLE_API_KEY: admin }, 'datastore', 'load', 'bad name', csv)
    assert.match(wrongName.err, /RIFFLE_BAD_REQUEST: .*invalid table name "bad name"/)
  })

  it('after the server stops: loads in this process again', async () => {
    server!.kill('SIGTERM')
    await new Promise((r) => server!.once('exit', r))
    assert.equal(existsSync(join(data, 'server.json')), false)
    const r = riffle({}, 'datastore', 'load', 'customers', csv)
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /^loaded 3 rows into customers in \d+\.\d s\n$/)
  })

  it('with no server: a file held by another process is named with its PID and the fix', async () => {
    const held = await DuckDBInstance.create(join(data, 'datastore.duckdb'))
    try {
      const r = riffle({}, 'datastore', 'load', 'customers', csv)
      assert.equal(r.code, 1)
      assert.match(
        r.err,
        new RegExp(
          `RIFFLE_STORE_UNAVAILABLE: the data store file .*datastore\\.duckdb is open in another process \\(PID ${process.pid}\\), and DuckDB lets one process at a time open it; if that is \`riffle start\`, load through it`,
        ),
      )
    } finally {
      held.closeSync()
    }
  })
})
