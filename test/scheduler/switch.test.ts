/**
 * RIFFLE_SCHEDULER=off: a `riffle start` process that fires no schedule, resumes no run and starts
 * no manual run, while it still serves the run records. The same set-up with the scheduler on
 * fires the schedule, so the test can tell the two apart.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { loadConfig } from '../../src/config.js'
import { openDataStore } from '../../src/datastore/store.js'
import { parseDefinitionsText } from '../../src/definitions/source.js'
import { createLogger } from '../../src/log.js'
import { openRiffle } from '../../src/runtime.js'
import { startServer } from '../../src/server.js'
import { serviceUrl, tempDir } from '../helpers.js'

const DEFS = `
collections:
  - name: ticks
    key: customer_id
    fields: [ { name: n, type: number } ]
campaigns:
  - name: every-minute
    trigger: { schedule: "* * * * *" }
    audience: { sql: "select customer_id, amount from customers" }
    outputs:
      - pull: { collection: ticks, key: row.customer_id, set: { n: double(row.amount) } }
`

/** A data directory with data and definitions, ready before the server starts (so the catch-up fires). */
async function prepared(): Promise<ReturnType<typeof tempDir>> {
  const tmp = tempDir()
  writeFileSync(join(tmp.dir, 'c.csv'), 'customer_id,amount\na,1\nb,2\n')
  const ds = await openDataStore('duckdb:', tmp.dir)
  await ds.load('customers', join(tmp.dir, 'c.csv'))
  await ds.close()
  const r = await openRiffle(loadConfig({ RIFFLE_DATA_DIR: tmp.dir }), createLogger('silent'))
  await r.defs.apply(parseDefinitionsText(DEFS), { actor: 'test' })
  await r.close()
  return tmp
}

async function serve(dir: string, scheduler: string) {
  const server = await startServer(
    loadConfig({
      RIFFLE_DATA_DIR: dir,
      RIFFLE_PORT: '0',
      RIFFLE_ENGINE: 'off',
      RIFFLE_SCHEDULER: scheduler,
      RIFFLE_KAFKA_BROKERS: serviceUrl('RIFFLE_KAFKA_BROKERS'),
    }),
    createLogger('silent'),
  )
  const key = (await server.riffle.keys.create(['admin'])).key
  const call = async (method: string, path: string) => {
    const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${key}` } })
    return { status: res.status, body: (await res.json()) as any }
  }
  return { server, call }
}

describe('RIFFLE_SCHEDULER', () => {
  it('is on by default, and only on or off', () => {
    assert.equal(loadConfig({}).schedulerEnabled, true)
    assert.equal(loadConfig({ RIFFLE_SCHEDULER: 'off' }).schedulerEnabled, false)
    assert.equal(loadConfig({ RIFFLE_SCHEDULER: ' OFF ' }).schedulerEnabled, false)
    assert.equal(loadConfig({ RIFFLE_SCHEDULER: 'on' }).schedulerEnabled, true)
    assert.throws(
      () => loadConfig({ RIFFLE_SCHEDULER: 'sometimes' }),
      (e: Error & { code?: string }) =>
        e.code === 'RIFFLE_CONFIG' && /RIFFLE_SCHEDULER: must be on or off, got "sometimes"/.test(e.message),
    )
  })

  it('on: the last minute of a campaign present at start-up runs at once', async () => {
    const tmp = await prepared()
    const { server, call } = await serve(tmp.dir, 'on')
    try {
      let runs: Array<{ trigger: string; status: string }> = []
      for (let i = 0; i < 200 && !runs.some((r) => r.status === 'succeeded'); i++) {
        runs = (await call('GET', '/api/v1/runs?campaign=every-minute')).body.items
        await new Promise((r) => setTimeout(r, 50))
      }
      assert.equal(runs[0]?.status, 'succeeded', JSON.stringify(runs))
      assert.equal(runs.length, 1)
      // the minute that just passed: 'schedule' within a minute of it, else 'catch-up'
      assert.ok(['schedule', 'catch-up'].includes(runs[0]!.trigger), runs[0]!.trigger)
      assert.equal((await server.riffle.pull.get('ticks', 'b'))?.fields.n, 2)
    } finally {
      await server.close()
      tmp.cleanup()
    }
  })

  it('off: no schedule fires, a manual run is refused naming the setting, the records are still served', async () => {
    const tmp = await prepared()
    const { server, call } = await serve(tmp.dir, 'off')
    try {
      await new Promise((r) => setTimeout(r, 3000)) // three scheduler ticks, had it been on
      const list = await call('GET', '/api/v1/runs')
      assert.equal(list.status, 200)
      assert.deepEqual(list.body.items, [])
      const run = await call('POST', '/api/v1/campaigns/every-minute/run')
      assert.equal(run.status, 409)
      assert.equal(run.body.error.code, 'RIFFLE_CONFLICT')
      assert.match(run.body.error.message, /the scheduler is off in this process \(RIFFLE_SCHEDULER=off\)/)
      assert.match(run.body.error.message, /riffle run CAMPAIGN/)
      // an unknown campaign is still named as such
      assert.equal((await call('POST', '/api/v1/campaigns/nope/run')).status, 404)
      const tables = await call('GET', '/api/v1/datastore/tables')
      assert.equal(tables.body.items[0]?.name, 'customers')
      assert.deepEqual((await call('GET', '/api/v1/runs')).body.items, [])
      assert.equal(await server.riffle.pull.get('ticks', 'b'), undefined)
    } finally {
      await server.close()
      tmp.cleanup()
    }
  })
})
