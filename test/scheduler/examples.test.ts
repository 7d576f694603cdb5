import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { PACKAGE_ROOT } from '../../src/runtime.js'
import { type Harness, openHarness } from './harness.js'

const dir = join(PACKAGE_ROOT, 'examples', 'scheduled')
let h: Harness

before(async () => {
  h = await openHarness()
  assert.equal((await h.datastore.load('customers', join(dir, 'customers.csv'))).rows, 200)
  assert.ok((await h.datastore.load('orders', join(dir, 'orders.csv'))).rows > 500)
  await h.apply(readFileSync(join(dir, 'riffle.yaml'), 'utf8'))
})
after(async () => h.close())

test('the worked examples run end to end and write into the Pull Marketing database', async () => {
  const s = await h.scheduler()
  for (const name of ['rfm-segments', 'spend-90d', 'churn-score', 'next-best-product']) {
    const end = await (await s.runNow(name)).done
    assert.equal(end.status, 'succeeded', `${name}: ${end.errors.join('; ')}`)
    assert.ok(end.activations.sent! > 0, name)
  }
  const page = await h.riffle.pull.scan('customer_scores', { limit: 500 })
  assert.equal(page.records.length, 200)
  const withOrders = page.records.filter((r) => r.fields.rfm_segment !== undefined)
  assert.ok(withOrders.length > 150)
  for (const r of page.records) {
    const f = r.fields
    assert.equal(typeof f.spend_90d, 'number')
    assert.ok((f.churn_score as number) > 0 && (f.churn_score as number) < 1)
    assert.match(f.churn_band as string, /^(low|medium|high)$/)
    // a customer who has bought every category has no next best product
    if (f.next_best_product !== undefined)
      assert.match(f.next_best_product as string, /^(shoes|shirts|jackets|bags|hats)$/)
  }
  assert.ok(page.records.filter((r) => r.fields.next_best_product !== undefined).length > 150)
  assert.ok(withOrders.every((r) => /^[1-5]{3}$/.test(r.fields.rfm_cell as string)))
})
