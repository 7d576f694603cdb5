/**
 * A column whose type does not fit the pull field it fills is caught when the run starts, from the
 * audience's column types (a LIMIT 0 query), before a row is read or anything is written.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Harness, openHarness } from './harness.js'

let h: Harness

const DEFS = `
collections:
  - name: typed
    key: customer_id
    fields:
      - { name: score, type: number }
      - { name: label, type: string }
      - { name: since, type: timestamp }
      - { name: count, type: integer }
      - { name: vip, type: boolean }
campaigns:
  - name: text-into-number
    trigger: { manual: true }
    audience: { sql: "select customer_id, 'high' as s from customers" }
    outputs:
      - pull: { collection: typed, key: row.customer_id, set: { label: '"touched"', score: row.s } }
  - name: via-content
    trigger: { manual: true }
    audience: { sql: "select customer_id, amount from customers" }
    content:
      picked: row.amount
    outputs:
      - pull: { collection: typed, key: row.customer_id, set: { label: content.picked } }
  - name: date-into-integer
    trigger: { manual: true }
    audience: { sql: "select customer_id, signed_up, amount * 1.5 as f from customers" }
    outputs:
      - pull: { collection: typed, key: row.customer_id, set: { count: row.signed_up, vip: row.f } }
  - name: missing-column
    trigger: { manual: true }
    audience: { sql: "select customer_id from customers" }
    outputs:
      - pull: { collection: typed, key: row.customer_id, set: { score: row.amount } }
  - name: fits
    trigger: { manual: true }
    audience: { sql: "select customer_id, amount, amount * 0.5 as half, signed_up, amount > 1 as big from customers" }
    content:
      band: 'row.half >= 1.0 ? "high" : "low"'
    outputs:
      - pull:
          collection: typed
          key: row.customer_id
          set: { score: row.amount, count: row.amount, since: row.signed_up, vip: row.big, label: content.band }
  - name: dynamic-struct
    trigger: { manual: true }
    audience: { sql: "select customer_id, {'a': amount} as s from customers" }
    outputs:
      - pull: { collection: typed, key: row.customer_id, set: { score: row.s } }
`

before(async () => {
  h = await openHarness()
  await h.loadCsv(
    'customers',
    'customer_id,amount,signed_up\na,1,2025-01-02\nb,2,2025-03-04\nc,3,2025-05-06\n',
  )
  await h.apply(DEFS)
})
after(async () => h.close())

async function run(name: string) {
  const s = await h.scheduler()
  return (await s.runNow(name)).done
}

/** A failed run that read no row and wrote nothing: no count, no batch, no activation, no output. */
function assertNothingDone(r: Awaited<ReturnType<typeof run>>) {
  assert.equal(r.status, 'failed')
  assert.equal(r.rowsSelected, null)
  assert.equal(r.rowsDone, 0)
  assert.equal(r.batchesDone, 0)
  assert.deepEqual(r.activations, {})
  assert.deepEqual(r.outputs, {})
  assert.equal(r.errors.length, 1)
}

test('a text column into a number field: named with campaign, field, both types and the column', async () => {
  const r = await run('text-into-number')
  assertNothingDone(r)
  assert.equal(
    r.message,
    'type mismatch between the audience and the Pull Marketing database, found before the run read a row: ' +
      'campaign "text-into-number", outputs[0].pull.set.score: field "score" of collection "typed" is number, ' +
      'but `row.s` has type string from column "s" (VARCHAR); make the audience yield a number, e.g. CAST(s AS DOUBLE) in the SQL',
  )
  // nothing was written, not even the field that would have fitted
  assert.equal(await h.riffle.pull.get('typed', 'a'), undefined)
  const hist = await h.riffle.history.countRecent({
    customerKeys: ['a'],
    campaign: 'text-into-number',
    since: 0,
  })
  assert.equal(hist.get('a') ?? 0, 0)
})

test('a value computed in content keeps its type through to the field', async () => {
  const r = await run('via-content')
  assertNothingDone(r)
  assert.match(
    r.message!,
    /campaign "via-content", outputs\[0\]\.pull\.set\.label: field "label" of collection "typed" is string, but `content\.picked` has type int/,
  )
})

test('every mismatch of a campaign is listed: a date into an integer, a decimal into a boolean', async () => {
  const r = await run('date-into-integer')
  assertNothingDone(r)
  assert.match(
    r.message!,
    /set\.count: field "count" of collection "typed" is integer, but `row\.signed_up` has type timestamp from column "signed_up" \(DATE\); make the audience yield a integer, e\.g\. CAST\(signed_up AS BIGINT\)/,
  )
  assert.match(
    r.message!,
    /; campaign "date-into-integer", outputs\[0\]\.pull\.set\.vip: field "vip" of collection "typed" is boolean, but `row\.f` has type double from column "f" \(DECIMAL\(\d+,\d+\)\)/,
  )
})

test('a column the audience does not have is named with the columns it has', async () => {
  const r = await run('missing-column')
  assertNothingDone(r)
  assert.match(
    r.message!,
    /campaign "missing-column", outputs\[0\]\.pull\.set\.score: `row\.amount` reads column "amount", which the audience does not have \(its columns: customer_id\)/,
  )
})

test('columns that fit (integer into number and integer, date into timestamp, bool, content string) run', async () => {
  const r = await run('fits')
  assert.equal(r.status, 'succeeded', r.errors.join('; '))
  assert.equal(r.outputs['pull:ok'], 3)
  assert.deepEqual((await h.riffle.pull.get('typed', 'c'))?.fields, {
    score: 3,
    count: 3,
    since: '2025-05-06T00:00:00.000Z',
    vip: true,
    label: 'high',
  })
})

test('a type only the values tell (a struct, dynamic in CEL) fails on the first batch, writing nothing', async () => {
  const before = await h.riffle.pull.get('typed', 'a')
  const r = await run('dynamic-struct')
  assert.equal(r.status, 'failed')
  assert.equal(r.rowsSelected, 3) // the static check could not decide, so the run started
  assert.equal(r.batchesDone, 0)
  assert.equal(r.outputs['pull:ok'] ?? 0, 0)
  assert.match(r.message!, /every activation of a batch failed.*invalid value for field "score" \(number\)/)
  assert.deepEqual(await h.riffle.pull.get('typed', 'a'), before)
})
