/**
 * The runs routes as `riffle start` serves them (startServer, the real wiring): start a run, list
 * runs, read one with its progress; scopes; 404 and 409.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadConfig } from '../../src/config.js'
import { DEFAULT_BATCH, openDataStore } from '../../src/datastore/store.js'
import { createLogger } from '../../src/log.js'
import { type Server, startServer } from '../../src/server.js'
import { serviceUrl, tempDir } from '../helpers.js'

const ROWS = DEFAULT_BATCH + 100 // two batches of the scheduler's
const key = (i: number) => `c${String(i).padStart(5, '0')}`
const SECOND = key(DEFAULT_BATCH + 1) // the first row of the second batch

/** A webhook receiver that holds the requests for chosen customer keys until released. */
function gatedReceiver(gated: string[]) {
  const waiting = new Map<string, () => void>()
  const arrived = new Map<string, () => void>()
  const arrivals = new Map(gated.map((k) => [k, new Promise<void>((r) => arrived.set(k, r))]))
  const releases = new Map(gated.map((k) => [k, new Promise<void>((r) => waiting.set(k, r))]))
  let received = 0
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (d) => (body += d))
    req.on('end', () => {
      received++
      const key = gated.find((k) => body.includes(`"${k}"`))
      if (!key) return res.end('ok')
      arrived.get(key)!()
      void releases.get(key)!.then(() => res.end('ok'))
    })
  })
  return {
    server,
    received: () => received,
    arrived: (key: string) => arrivals.get(key)!,
    release: (key: string) => waiting.get(key)!(),
  }
}

describe('runs API (riffle start)', () => {
  const tmp = tempDir()
  const hook = gatedReceiver(['c00001', SECOND])
  let server: Server
  let base: string
  let admin: string
  let ingest: string

  before(async () => {
    await new Promise<void>((r) => hook.server.listen(0, '127.0.0.1', r))
    const hookPort = (hook.server.address() as AddressInfo).port
    // The audience, loaded before the server opens the DuckDB file.
    const store = await openDataStore('duckdb:', tmp.dir)
    let csv = 'customer_id,amount\n'
    for (let i = 1; i <= ROWS; i++) csv += `${key(i)},${i % 100}\n`
    writeFileSync(join(tmp.dir, 'customers.csv'), csv)
    assert.equal((await store.load('customers', join(tmp.dir, 'customers.csv'))).rows, ROWS)
    await store.close()
    server = await startServer(
      loadConfig({
        RIFFLE_DATA_DIR: tmp.dir,
        RIFFLE_PORT: '0',
        RIFFLE_ENGINE: 'off',
        RIFFLE_KAFKA_BROKERS: serviceUrl('RIFFLE_KAFKA_BROKERS'),
        RIFFLE_WEBHOOK_ALLOW: '127.0.0.1',
      }),
      createLogger('silent'),
    )
    base = server.url
    admin = (await server.riffle.keys.create(['admin'])).key
    ingest = (await server.riffle.keys.create(['ingest', 'pull:read:*'])).key
    const applied = await call('POST', '/api/v1/definitions/apply', admin, {
      collections: [
        { name: 'scores', key: 'customer_id', fields: [{ name: 'double_amount', type: 'number' }] },
      ],
      campaigns: [
        {
          name: 'doubler',
          trigger: { manual: true },
          audience: { sql: 'select customer_id, amount * 2 as d from customers' },
          outputs: [
            {
              pull: { collection: 'scores', key: 'row.customer_id', set: { double_amount: 'double(row.d)' } },
            },
          ],
        },
        {
          name: 'gated',
          trigger: { manual: true },
          audience: { sql: 'select customer_id from customers' },
          where: `row.customer_id == "c00001" || row.customer_id == "${SECOND}"`,
          outputs: [{ webhook: { url: `http://127.0.0.1:${hookPort}/hook`, timeout: '60s', retries: 0 } }],
        },
        {
          name: 'realtime',
          trigger: { stream: 'clicks' },
          outputs: [
            { pull: { collection: 'scores', key: 'event.customer_id', set: { double_amount: '1.0' } } },
          ],
        },
      ],
      streams: [
        {
          name: 'clicks',
          topic: 'runs-test.clicks',
          key: 'customer_id',
          fields: [{ name: 'customer_id', type: 'string', required: true }],
        },
      ],
    })
    assert.equal(applied.status, 200, JSON.stringify(applied.body))
  })
  after(async () => {
    await server?.close()
    await new Promise((r) => hook.server.close(r))
    tmp.cleanup()
  })

  async function call(
    method: 'GET' | 'POST',
    path: string,
    key: string | undefined,
    body?: unknown,
  ): Promise<{ status: number; body: any }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : undefined }
  }

  async function waitFor(id: string, ok: (run: any) => boolean, what: string): Promise<any> {
    const deadline = Date.now() + 60_000
    let last: any
    while (Date.now() < deadline) {
      const r = await call('GET', `/api/v1/runs/${encodeURIComponent(id)}`, admin)
      assert.equal(r.status, 200)
      last = r.body
      if (ok(last)) return last
      await new Promise((res) => setTimeout(res, 25))
    }
    assert.fail(`run ${id}: ${what} did not happen; last seen ${JSON.stringify(last)}`)
  }

  it('refuses without a key (401) and with a key that lacks the admin scope (403)', async () => {
    for (const [method, path] of [
      ['POST', '/api/v1/campaigns/doubler/run'],
      ['GET', '/api/v1/runs'],
      ['GET', '/api/v1/runs/anything'],
    ] as const) {
      const none = await call(method, path, undefined)
      assert.equal(none.status, 401, `${method} ${path}`)
      assert.equal(none.body.error.code, 'RIFFLE_UNAUTHORIZED')
      const scoped = await call(method, path, ingest)
      assert.equal(scoped.status, 403, `${method} ${path}`)
      assert.equal(scoped.body.error.code, 'RIFFLE_FORBIDDEN')
      assert.match(scoped.body.error.message, /scope "admin"/)
    }
    // nothing ran
    assert.deepEqual((await call('GET', '/api/v1/runs', admin)).body.items, [])
  })

  it('starts a run (202), which writes the pull store, and reads it back and in the list', async () => {
    const started = await call('POST', '/api/v1/campaigns/doubler/run', admin)
    assert.equal(started.status, 202, JSON.stringify(started.body))
    assert.equal(started.body.campaign, 'doubler')
    assert.equal(started.body.status, 'running')
    assert.equal(started.body.trigger, 'manual')
    assert.equal(started.body.scheduledFor, null)
    assert.match(started.body.id, /^doubler\.manual\./)
    const end = await waitFor(started.body.id, (r) => r.status !== 'running', 'the end')
    assert.equal(end.status, 'succeeded', end.errors.join('; '))
    assert.equal(end.rowsSelected, ROWS)
    assert.equal(end.rowsDone, ROWS)
    assert.equal(end.batchesDone, 2)
    assert.equal(end.activations.sent, ROWS)
    assert.equal(end.outputs['pull:ok'], ROWS)
    assert.deepEqual(end.errors, [])
    assert.ok(end.startedAt > 0 && end.endedAt >= end.startedAt)
    assert.equal((await server.riffle.pull.get('scores', 'c00042'))?.fields.double_amount, 84)

    const list = await call('GET', '/api/v1/runs?campaign=doubler', admin)
    assert.equal(list.status, 200)
    assert.deepEqual(
      list.body.items.map((r: { id: string }) => r.id),
      [end.id],
    )
    assert.equal((await call('GET', '/api/v1/runs?status=failed', admin)).body.items.length, 0)
    assert.equal((await call('GET', '/api/v1/runs?campaign=nope', admin)).body.items.length, 0)
    assert.equal((await call('GET', '/api/v1/runs?limit=0', admin)).status, 400)
  })

  it('shows progress while a run goes, and refuses a second run of the campaign with 409', async () => {
    const started = await call('POST', '/api/v1/campaigns/gated/run', admin)
    assert.equal(started.status, 202)
    const id = started.body.id as string
    await hook.arrived('c00001') // the first batch waits on its webhook
    const first = await waitFor(id, (r) => r.rowsSelected !== null, 'counting the audience')
    assert.equal(first.status, 'running')
    assert.equal(first.rowsSelected, ROWS)
    assert.equal(first.rowsDone, 0)
    assert.equal(first.batchesDone, 0)

    const again = await call('POST', '/api/v1/campaigns/gated/run', admin)
    assert.equal(again.status, 409)
    assert.equal(again.body.error.code, 'RIFFLE_CONFLICT')
    assert.ok(again.body.error.message.includes(`run ${id}`), again.body.error.message)
    const running = await call('GET', '/api/v1/runs?status=running', admin)
    assert.deepEqual(
      running.body.items.map((r: { id: string }) => r.id),
      [id],
    )

    hook.release('c00001')
    await hook.arrived(SECOND) // the second batch waits on its webhook
    const mid = await waitFor(id, (r) => r.rowsDone > 0, 'the first batch')
    assert.equal(mid.status, 'running')
    assert.equal(mid.rowsDone, DEFAULT_BATCH)
    assert.equal(mid.batchesDone, 1)
    assert.equal(mid.cursor, key(DEFAULT_BATCH))
    assert.equal(mid.outputs['webhook:ok'], 1)

    hook.release(SECOND)
    const end = await waitFor(id, (r) => r.status !== 'running', 'the end')
    assert.equal(end.status, 'succeeded', end.errors.join('; '))
    assert.equal(end.rowsDone, ROWS)
    assert.equal(end.activations.sent, 2)
    assert.equal(end.outputs['webhook:ok'], 2)
    assert.equal(hook.received(), 2)
  })

  it('answers 404 for an unknown run or campaign, and 400 for a stream-triggered one', async () => {
    const run = await call('GET', '/api/v1/runs/doubler.manual.0.nope', admin)
    assert.equal(run.status, 404)
    assert.equal(run.body.error.code, 'RIFFLE_NOT_FOUND')
    assert.match(run.body.error.message, /no run "doubler\.manual\.0\.nope"/)
    const campaign = await call('POST', '/api/v1/campaigns/nope/run', admin)
    assert.equal(campaign.status, 404)
    assert.equal(campaign.body.error.code, 'RIFFLE_NOT_FOUND')
    assert.match(campaign.body.error.message, /no campaign "nope"/)
    const rt = await call('POST', '/api/v1/campaigns/realtime/run', admin)
    assert.equal(rt.status, 400)
    assert.match(rt.body.error.message, /triggered by stream "clicks"/)
  })

  it('lists the data store tables with columns, types and kinds', async () => {
    const r = await call('GET', '/api/v1/datastore/tables', admin)
    assert.equal(r.status, 200)
    assert.deepEqual(r.body.items, [
      {
        name: 'customers',
        columns: [
          { name: 'customer_id', type: 'VARCHAR', kind: 'string' },
          { name: 'amount', type: 'BIGINT', kind: 'integer' },
        ],
      },
    ])
    assert.equal((await call('GET', '/api/v1/datastore/tables', ingest)).status, 403)
  })
})
