import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Harness, openHarness } from './harness.js'

let h: Harness

const DEFS = `
collections:
  - name: profile
    key: customer_id
    fields:
      - { name: segment, type: string }
      - { name: score, type: number }
      - { name: tier, type: string }
campaigns:
  - name: scores
    trigger: { manual: true }
    audience: { sql: "select customer_id, amount * 2 as score, case when amount > 50 then 'high' else 'low' end as segment from customers" }
    content:
      tier: 'row.score > 100.0 ? "gold" : "std"'
    outputs:
      - pull: { collection: profile, key: row.customer_id, set: { segment: row.segment, score: row.score, tier: content.tier } }
  - name: table-where
    trigger: { manual: true }
    audience: { table: customers, where: "row.amount > 50.0" }
    outputs:
      - pull: { collection: profile, key: row.customer_id, set: { tier: '"tw"' } }
  - name: held
    trigger: { manual: true }
    cells: { holdout: 50 }
    audience: { sql: "select customer_id from customers" }
    outputs:
      - pull: { collection: profile, key: row.customer_id, set: { tier: '"held"' } }
  - name: no-key
    trigger: { manual: true }
    audience: { sql: "select amount from customers" }
    outputs:
      - pull: { collection: profile, key: '"x"', set: { tier: '"x"' } }
  - name: bad-sql
    trigger: { manual: true }
    audience: { sql: "select customer_id, nope from customers" }
    outputs:
      - pull: { collection: profile, key: row.customer_id, set: { tier: '"x"' } }
  - name: bad-type
    trigger: { manual: true }
    audience: { sql: "select customer_id, 'not a number' as s from customers" }
    outputs:
      - pull: { collection: profile, key: row.customer_id, set: { score: row.s } }
`

const rows = 12_000
before(async () => {
  h = await openHarness()
  let csv = 'customer_id,amount\n'
  for (let i = 1; i <= rows; i++) csv += `c${String(i).padStart(6, '0')},${i % 100}\n`
  assert.equal(await h.loadCsv('customers', csv), rows)
  await h.apply(DEFS)
})
after(async () => h.close())

test('a manual run streams the audience in batches, writes the pull store and records the run', async () => {
  const s = await h.scheduler({ batchSize: 5000 })
  const seen: number[] = []
  s.onProgress = (r) => seen.push(r.rowsDone)
  const { run, done } = await s.runNow('scores')
  assert.equal(run.status, 'running')
  const end = await done
  assert.equal(end.status, 'succeeded', end.errors.join('; '))
  assert.equal(end.rowsSelected, rows)
  assert.equal(end.rowsDone, rows)
  assert.equal(end.batchesDone, 3)
  assert.deepEqual(seen, [5000, 10000, 12000])
  assert.equal(end.activations.sent, rows)
  assert.equal(end.outputs['pull:ok'], rows)
  assert.ok(end.endedAt! >= end.startedAt!)
  const r = await h.riffle.pull.get('profile', 'c000077')
  assert.equal(r?.fields.segment, 'high')
  assert.equal(r?.fields.score, 154)
  assert.equal(r?.fields.tier, 'gold')
  const list = await s.runs.list({ campaign: 'scores' })
  assert.equal(list[0]?.id, end.id)
})

test('audience table + CEL where selects only the matching rows', async () => {
  const s = await h.scheduler()
  const end = await (await s.runNow('table-where')).done
  assert.equal(end.status, 'succeeded', end.errors.join('; '))
  assert.equal(end.activations.sent, rows * 0.49) // amount 51..99 of each 100
  assert.equal((await h.riffle.pull.get('profile', 'c000051'))?.fields.tier, 'tw')
  assert.notEqual((await h.riffle.pull.get('profile', 'c000050'))?.fields.tier, 'tw')
})

test('holdout works for scheduled runs as for real-time ones: held-out rows get no output', async () => {
  const s = await h.scheduler()
  const end = await (await s.runNow('held')).done
  assert.equal(end.status, 'succeeded')
  const held = end.activations.holdout ?? 0
  assert.ok(held > rows * 0.4 && held < rows * 0.6, `holdout ${held}`)
  assert.equal(end.activations.sent! + held, rows)
  assert.equal(end.outputs['pull:ok'], end.activations.sent)
})

test('bad input: each failure names the problem and no run is marked succeeded', async () => {
  const s = await h.scheduler()
  const noKey = await (await s.runNow('no-key')).done
  assert.equal(noKey.status, 'failed')
  assert.match(noKey.message!, /no key column "customer_id" \(its columns: amount\)/)
  const badSql = await (await s.runNow('bad-sql')).done
  assert.equal(badSql.status, 'failed')
  assert.match(badSql.message!, /nope/)
  const badType = await (await s.runNow('bad-type')).done
  assert.equal(badType.status, 'failed')
  assert.match(badType.errors.join('\n'), /score/)
  assert.equal(badType.outputs['pull:ok'] ?? 0, 0)
})

test('runs of one campaign never overlap: a second manual run is refused while one goes', async () => {
  const s = await h.scheduler({ batchSize: 1000 })
  const first = await s.runNow('scores')
  await assert.rejects(s.runNow('scores'), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'RIFFLE_CONFLICT')
    assert.match(e.message, new RegExp(first.run.id.replace(/\./g, '\\.')))
    return true
  })
  assert.equal((await first.done).status, 'succeeded')
})

test('a run that stops resumes from its last completed batch, without duplicating outputs', async () => {
  const s1 = await h.scheduler({ batchSize: 5000, leaseMs: 500 })
  let stopping: Promise<void> | undefined
  s1.onProgress = (r) => {
    if (r.batchesDone === 1) stopping ??= s1.stop()
  }
  const { run, done } = await s1.runNow('scores')
  const mid = await done
  await stopping
  assert.equal(mid.status, 'running')
  // progress is reported once a batch's history is durable, while the next batch is under way:
  // the run stops after that one at the latest
  assert.ok([5000, 10000].includes(mid.rowsDone), `stopped after ${mid.rowsDone} rows`)
  const s2 = await h.scheduler({ batchSize: 5000, leaseMs: 500 })
  const batches: number[] = []
  s2.onProgress = (r) => batches.push(r.rowsDone)
  await s2.tick() // finds the orphaned run and resumes it
  for (let i = 0; i < 100; i++) {
    const r = await s2.runs.get(run.id)
    if (r.status !== 'running') break
    await new Promise((res) => setTimeout(res, 50))
  }
  const end = await s2.runs.get(run.id)
  assert.equal(end.status, 'succeeded', end.errors.join('; '))
  // the batches done before the stop were not done again
  assert.deepEqual(batches, mid.rowsDone === 5000 ? [10000, 12000] : [12000])
  assert.equal(end.rowsDone, rows)
  assert.equal(end.activations.sent, rows)
  const hist = await h.riffle.history.countRecent({
    customerKeys: ['c000001', 'c011999'],
    campaign: 'scores',
    since: 0,
  })
  // one activation per run per key: two earlier runs (the first test, the overlap test) and this one
  assert.equal(hist.get('c000001'), 3)
  assert.equal(hist.get('c011999'), 3)
})
