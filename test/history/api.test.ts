import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { bearer, startTestApp, type TestApp } from '../helpers.js'
import { activation, range, T0 } from './fixtures.js'

describe('output history API', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
    await t.riffle.history.append([
      ...range(12).map((i) => activation(i, { campaign: i < 6 ? 'welcome' : 'winback' })),
      activation(50, { customerKey: 'cust/with space', status: 'holdout', cell: 'holdout' }),
    ])
  })
  after(() => t.close())

  const get = (url: string, key = t.adminKey) => t.app.inject({ method: 'GET', url, headers: bearer(key) })

  it('lists every activation newest first, in the API record shape', async () => {
    const r = await get('/api/v1/history')
    assert.equal(r.statusCode, 200)
    const body = r.json()
    assert.equal(body.items.length, 13)
    assert.equal(body.nextCursor, null)
    const first = body.items[0]
    assert.equal(first.content.offer_code, 'THX-50')
    assert.equal(first.outputTime, new Date(T0 + 50_000).toISOString())
    assert.deepEqual(first.source, { kind: 'stream', topic: 'shop.purchases', partition: 2, offset: '50' })
    assert.equal(first.status, 'holdout')
    assert.equal(typeof first.seq, 'number')
    assert.deepEqual(first.deliveries, { 'kafka:campaign.offers': { status: 'ok' } })
  })

  it('filters by campaign, customer key, time range and status; pages with an opaque cursor', async () => {
    const w = (await get('/api/v1/history?campaign=winback&limit=4')).json()
    assert.equal(w.items.length, 4)
    assert.ok(w.items.every((i: { campaign: string }) => i.campaign === 'winback'))
    assert.ok(w.nextCursor)
    const w2 = (await get(`/api/v1/history?campaign=winback&limit=4&cursor=${w.nextCursor}`)).json()
    assert.equal(w2.items.length, 2)
    assert.equal(w2.nextCursor, null)
    assert.deepEqual(
      [...w.items, ...w2.items].map((i: { content: { offer_code: string } }) => i.content.offer_code),
      ['THX-11', 'THX-10', 'THX-9', 'THX-8', 'THX-7', 'THX-6'],
    )

    const since = new Date(T0 + 3_000).toISOString()
    const until = new Date(T0 + 5_000).toISOString()
    const win = (await get(`/api/v1/history?since=${since}&until=${until}`)).json()
    assert.deepEqual(
      win.items.map((i: { content: { offer_code: string } }) => i.content.offer_code),
      ['THX-4', 'THX-3'],
    )
    const c2 = (await get('/api/v1/history?customerKey=c2')).json()
    assert.equal(c2.items.length, 1)
    const holdout = (await get('/api/v1/history?status=holdout,suppressed')).json()
    assert.equal(holdout.items.length, 1)
  })

  it('answers what was sent to one customer, and when', async () => {
    const r = await get(`/api/v1/history/customers/${encodeURIComponent('cust/with space')}`)
    assert.equal(r.statusCode, 200)
    const body = r.json()
    assert.equal(body.customerKey, 'cust/with space')
    assert.equal(body.items.length, 1)
    assert.equal(body.items[0].cell, 'holdout')
    const c1 = (await get('/api/v1/history/customers/c1?status=sent')).json()
    assert.deepEqual(
      c1.items.map((i: { outputTime: string; campaign: string }) => [i.campaign, i.outputTime]),
      [
        ['winback', new Date(T0 + 11_000).toISOString()],
        ['welcome', new Date(T0 + 1_000).toISOString()],
      ],
    )
    const none = (await get('/api/v1/history/customers/nobody')).json()
    assert.deepEqual(none, { customerKey: 'nobody', items: [], nextCursor: null })
  })

  it('rejects a bad time range, status, cursor or limit with 400 and a clear code', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['/api/v1/history?since=yesterday', 'RIFFLE_BAD_TIME_RANGE', /since: "yesterday" is not a time/],
      ['/api/v1/history?since=2026-01-31T08:00:00', 'RIFFLE_BAD_TIME_RANGE', /with a zone/],
      [
        '/api/v1/history?since=2026-02-01&until=2026-01-01',
        'RIFFLE_BAD_TIME_RANGE',
        /since \(2026-02-01T00:00:00.000Z\) must be before until/,
      ],
      ['/api/v1/history?status=delivered', 'RIFFLE_BAD_REQUEST', /"delivered" is not a status/],
      ['/api/v1/history?cursor=xyz', 'RIFFLE_BAD_CURSOR', /cursor/],
      ['/api/v1/history?limit=1001', 'RIFFLE_BAD_REQUEST', /limit/],
      ['/api/v1/history?limit=0', 'RIFFLE_BAD_REQUEST', /limit/],
    ]
    for (const [url, code, message] of cases) {
      const r = await get(url)
      assert.equal(r.statusCode, 400, url)
      assert.equal(r.json().error.code, code, url)
      assert.match(r.json().error.message, message, url)
    }
  })

  it('needs an admin key', async () => {
    const none = await t.app.inject({ method: 'GET', url: '/api/v1/history' })
    assert.equal(none.statusCode, 401)
    const { key } = await t.riffle.keys.create(['ingest'])
    const r = await get('/api/v1/history/customers/c1', key)
    assert.equal(r.statusCode, 403)
    assert.equal(r.json().error.code, 'RIFFLE_FORBIDDEN')
  })

  it('documents the routes in OpenAPI', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json()
    assert.ok(doc.paths['/api/v1/history'])
    assert.ok(doc.paths['/api/v1/history/customers/{key}'])
  })
})
