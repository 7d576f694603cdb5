import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { loadConfig } from '../../src/config.js'
import { TargetPolicy } from '../../src/engine/ssrf.js'
import { WebhookSender } from '../../src/engine/webhook.js'
import { createLogger } from '../../src/log.js'
import { openRiffle, type Riffle } from '../../src/runtime.js'
import { Scheduler } from '../../src/scheduler/scheduler.js'
import { freshPostgresDatabase } from '../helpers.js'
import { type Harness, openHarness } from './harness.js'

let h: Harness
let pgdb: Awaited<ReturnType<typeof freshPostgresDatabase>>
let other: Riffle
const webhooks = new WebhookSender(new TargetPolicy())

before(async () => {
  pgdb = await freshPostgresDatabase()
  h = await openHarness({ RIFFLE_DATABASE_URL: pgdb.url })
  other = await openRiffle(
    loadConfig({ RIFFLE_DATA_DIR: h.dir, RIFFLE_DATABASE_URL: pgdb.url }),
    createLogger('silent'),
  )
  let csv = 'customer_id,amount\n'
  for (let i = 1; i <= 3000; i++) csv += `${i},${i % 7}\n`
  await h.loadCsv('customers', csv)
  await h.apply(`
collections:
  - name: profile
    key: customer_id
    fields: [ { name: amount, type: number } ]
campaigns:
  - name: nightly
    trigger: { schedule: "0 2 * * *", timezone: Europe/London }
    audience: { sql: "select customer_id, amount from customers" }
    outputs:
      - pull: { collection: profile, key: string(row.customer_id), set: { amount: double(row.amount) } }
`)
})
after(async () => {
  await other.close()
  await h.close()
  await webhooks.close()
  await pgdb.drop()
})

test('two schedulers sharing PostgreSQL fire a scheduled time exactly once; a time that comes during the run is skipped', async () => {
  let clock = Date.parse('2026-10-25T02:00:00.500Z') // 02:00 GMT, just after the scheduled time
  const now = () => clock
  const a = await h.scheduler({ owner: 'process-a', now, batchSize: 500, leaseMs: 3 * 86_400_000 })
  const b = await Scheduler.open(
    {
      db: other.db,
      defs: other.defs,
      datastore: h.datastore,
      pull: other.pull,
      history: other.history,
      webhooks,
      log: createLogger('silent'),
    },
    { owner: 'process-b', now, batchSize: 500, leaseMs: 3 * 86_400_000 },
  )
  try {
    await Promise.all([a.tick(), b.tick(), a.tick(), b.tick()])
    const runs = await a.runs.list({ campaign: 'nightly' })
    assert.equal(runs.length, 1, JSON.stringify(runs.map((r) => [r.id, r.owner, r.status])))
    const id = runs[0]!.id
    assert.equal(id, `nightly.${Date.parse('2026-10-25T02:00:00Z')}`)
    assert.equal(runs[0]!.trigger, 'schedule')

    // The next day's time arrives while the run still holds the lease: recorded as skipped.
    const lease = await a.runs.leaseHolder('nightly', clock)
    if (lease === id) {
      clock = Date.parse('2026-10-26T02:00:00.500Z')
      await Promise.all([a.tick(), b.tick()])
      const skipped = await a.runs.get(`nightly.${Date.parse('2026-10-26T02:00:00Z')}`)
      assert.equal(skipped.status, 'skipped')
      assert.match(
        skipped.message!,
        new RegExp(`run ${id.replace('.', '\\.')} of this campaign was still in progress`),
      )
    }
    for (let i = 0; i < 200; i++) {
      if ((await a.runs.get(id)).status !== 'running') break
      await new Promise((r) => setTimeout(r, 50))
    }
    const done = await a.runs.get(id)
    assert.equal(done.status, 'succeeded', done.errors.join('; '))
    assert.equal(done.rowsDone, 3000)
    assert.equal(done.activations.sent, 3000)
    assert.equal((await h.riffle.pull.get('profile', '13'))?.fields.amount, 6)

    // A scheduler started four hours after a missed time runs it once, as a catch-up.
    const c = await h.scheduler({ owner: 'process-c', now: () => Date.parse('2026-10-28T06:00:00Z') })
    await c.tick()
    const caught = await c.runs.get(`nightly.${Date.parse('2026-10-28T02:00:00Z')}`)
    assert.equal(caught.trigger, 'catch-up')
  } finally {
    await b.stop()
  }
})

test('a process that finds the lease taken for the same scheduled time leaves the run to the taker and records no skip', async () => {
  const due = Date.parse('2026-11-02T02:00:00Z')
  const id = `nightly.${due}`
  const now = () => due + 500
  const runs = (await h.scheduler({ owner: 'probe', now })).runs
  for (let i = 0; i < 200 && (await runs.leaseHolder('nightly', Date.now())); i++)
    await new Promise((r) => setTimeout(r, 50))
  // Process A has taken the lease for this time and not yet written its run record.
  assert.ok(await runs.acquireLease('nightly', id, 'process-a', now(), 60_000))
  const b = await h.scheduler({ owner: 'process-b', now })
  await b.tick()
  await assert.rejects(runs.get(id), /no run/)
  await runs.releaseLease('nightly', id, 'process-a')
})
