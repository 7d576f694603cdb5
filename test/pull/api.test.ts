/** The Pull API and the record admin routes, on the embedded store, through inject(). */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { MAX_MGET_KEYS } from '../../src/api/routes/pull.js'
import { bearer, startTestApp, type TestApp } from '../helpers.js'

describe('Pull API', () => {
  let t: TestApp
  let profileKey: string
  let allKey: string
  let ingestKey: string
  const admin = () => bearer(t.adminKey)

  const errorCode = (res: { json: () => unknown }) => (res.json() as { error: { code: string } }).error.code

  before(async () => {
    t = await startTestApp()
    for (const c of [
      {
        name: 'profile',
        key: 'customer_id',
        fields: [
          { name: 'first_name', type: 'string' },
          { name: 'segment', type: 'string' },
          { name: 'churn_score', type: 'number' },
          { name: 'last_seen', type: 'timestamp' },
        ],
      },
      { name: 'offers', key: 'customer_id', fields: [{ name: 'code', type: 'string' }] },
    ]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/collections',
        headers: admin(),
        payload: c,
      })
      assert.equal(res.statusCode, 201, res.body)
    }
    profileKey = (await t.riffle.keys.create(['pull:read:profile'])).key
    allKey = (await t.riffle.keys.create(['pull:read:*'])).key
    ingestKey = (await t.riffle.keys.create(['ingest'])).key
  })
  after(async () => {
    await t.close()
  })

  const put = (collection: string, key: string, fields: Record<string, unknown>) =>
    t.app.inject({
      method: 'PUT',
      url: `/api/v1/collections/${collection}/records/${encodeURIComponent(key)}`,
      headers: admin(),
      payload: { fields },
    })
  const pull = (path: string, key = profileKey, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'GET', url: `/pull/v1/${path}`, headers: { ...bearer(key), ...headers } })

  it('answers 404 with a JSON error for a missing record', async () => {
    const res = await pull('profile/nobody')
    assert.equal(res.statusCode, 404)
    assert.equal(errorCode(res), 'RIFFLE_NOT_FOUND')
    assert.match(res.headers['content-type'] as string, /application\/json/)
  })

  it('serves a record written by an administrator, with ETag and Cache-Control', async () => {
    const w = await put('profile', 'c1', {
      first_name: 'Ada',
      segment: 'gold',
      last_seen: '2025-01-02T03:04:05Z',
    })
    assert.equal(w.statusCode, 200, w.body)
    assert.match(w.json().writer, /^admin:[0-9a-f]{12}$/)
    const res = await pull('profile/c1')
    assert.equal(res.statusCode, 200, res.body)
    const body = res.json()
    assert.equal(body.key, 'c1')
    assert.deepEqual(body.fields, {
      first_name: 'Ada',
      segment: 'gold',
      last_seen: '2025-01-02T03:04:05.000Z',
    })
    assert.ok(!Number.isNaN(Date.parse(body.updatedAt)))
    assert.equal(body.writer, undefined, 'the public API does not show who wrote a record')
    assert.match(res.headers['cache-control'] as string, /^private, max-age=\d+$/)
    const etag = res.headers.etag as string
    assert.match(etag, /^"[A-Za-z0-9_-]+"$/)

    const again = await pull('profile/c1', profileKey, { 'if-none-match': etag })
    assert.equal(again.statusCode, 304)
    assert.equal(again.body, '')

    const patched = await t.app.inject({
      method: 'PATCH',
      url: '/api/v1/collections/profile/records/c1',
      headers: admin(),
      payload: { fields: { churn_score: 0.4 } },
    })
    assert.equal(patched.statusCode, 200, patched.body)
    const changed = await pull('profile/c1', profileKey, { 'if-none-match': etag })
    assert.equal(changed.statusCode, 200)
    assert.notEqual(changed.headers.etag, etag)
    assert.equal(changed.json().fields.churn_score, 0.4)
    assert.equal(changed.json().fields.segment, 'gold', 'PATCH merges')
  })

  it('returns only the requested fields; an unknown one is a 400 naming it', async () => {
    await put('profile', 'c2', { first_name: 'Bo', segment: 'silver', churn_score: 0.9 })
    const res = await pull('profile/c2?fields=segment,churn_score')
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json().fields, { segment: 'silver', churn_score: 0.9 })
    const bad = await pull('profile/c2?fields=segment,shoe_size')
    assert.equal(bad.statusCode, 400)
    assert.equal(errorCode(bad), 'RIFFLE_BAD_REQUEST')
    assert.match(bad.json().error.message, /shoe_size/)
  })

  it('scopes keys per collection', async () => {
    await put('offers', 'c1', { code: 'THX-1' })
    const denied = await pull('offers/c1', profileKey)
    assert.equal(denied.statusCode, 403)
    assert.equal(errorCode(denied), 'RIFFLE_FORBIDDEN')
    const deniedMget = await t.app.inject({
      method: 'POST',
      url: '/pull/v1/offers/_mget',
      headers: bearer(profileKey),
      payload: { keys: ['c1'] },
    })
    assert.equal(deniedMget.statusCode, 403)
    assert.equal((await pull('offers/c1', allKey)).json().fields.code, 'THX-1')
    assert.equal((await pull('offers/c1', ingestKey)).statusCode, 403)
    const anonymous = await t.app.inject({ method: 'GET', url: '/pull/v1/offers/c1' })
    assert.equal(anonymous.statusCode, 401)
    assert.equal(errorCode(anonymous), 'RIFFLE_UNAUTHORIZED')
    // The Pull API key cannot use the admin routes either.
    const adminRoute = await t.app.inject({
      method: 'GET',
      url: '/api/v1/collections/profile/records',
      headers: bearer(profileKey),
    })
    assert.equal(adminRoute.statusCode, 403)
  })

  it('answers unknown collections and bad keys with clear 4xx codes', async () => {
    const unknown = await pull('nosuch/c1', allKey)
    assert.equal(unknown.statusCode, 404)
    assert.equal(errorCode(unknown), 'RIFFLE_UNKNOWN_COLLECTION')
    const long = await pull(`profile/${'k'.repeat(257)}`)
    assert.equal(long.statusCode, 400)
    assert.equal(errorCode(long), 'RIFFLE_BAD_REQUEST')
    const empty = await pull('profile/')
    assert.equal(empty.statusCode, 400)
    assert.equal(errorCode(empty), 'RIFFLE_BAD_REQUEST')
    const control = await pull('profile/a%00b')
    assert.equal(control.statusCode, 400)
  })

  it('reads keys of any printable characters, up to 256 of them', async () => {
    for (const key of ['a b/c:d', 'ünï', 'k'.repeat(256)]) {
      assert.equal((await put('profile', key, { segment: 'odd' })).statusCode, 200)
      const res = await pull(`profile/${encodeURIComponent(key)}`)
      assert.equal(res.statusCode, 200, res.body)
      assert.equal(res.json().key, key)
    }
  })

  it('_mget answers in order, null for missing keys, and limits the number of keys', async () => {
    await put('profile', 'm1', { segment: 'one' })
    await put('profile', 'm2', { segment: 'two', first_name: 'Two' })
    const res = await t.app.inject({
      method: 'POST',
      url: '/pull/v1/profile/_mget',
      headers: bearer(profileKey),
      payload: { keys: ['m2', 'missing', 'm1'], fields: ['segment'] },
    })
    assert.equal(res.statusCode, 200, res.body)
    const records = res.json().records
    assert.deepEqual(
      records.map((r: { fields: unknown } | null) => r?.fields ?? null),
      [{ segment: 'two' }, null, { segment: 'one' }],
    )

    const tooMany = await t.app.inject({
      method: 'POST',
      url: '/pull/v1/profile/_mget',
      headers: bearer(profileKey),
      payload: { keys: Array.from({ length: MAX_MGET_KEYS + 1 }, (_, i) => `k${i}`) },
    })
    assert.equal(tooMany.statusCode, 413)
    assert.equal(errorCode(tooMany), 'RIFFLE_PAYLOAD_TOO_LARGE')

    const malformed = await t.app.inject({
      method: 'POST',
      url: '/pull/v1/profile/_mget',
      headers: { ...bearer(profileKey), 'content-type': 'application/json' },
      payload: '{"keys": [',
    })
    assert.equal(malformed.statusCode, 400)
    assert.equal(errorCode(malformed), 'RIFFLE_INVALID_JSON')

    for (const payload of [{}, { keys: 'm1' }, { keys: [''] }, { keys: ['m1'], fields: ['nope'] }]) {
      const bad = await t.app.inject({
        method: 'POST',
        url: '/pull/v1/profile/_mget',
        headers: bearer(profileKey),
        payload,
      })
      assert.equal(bad.statusCode, 400, `${JSON.stringify(payload)}: ${bad.body}`)
      assert.equal(errorCode(bad), 'RIFFLE_BAD_REQUEST')
    }
  })

  it('serves a collection defined after start-up', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/collections',
      headers: admin(),
      payload: { name: 'late', key: 'id', fields: [{ name: 'x', type: 'integer' }] },
    })
    assert.equal(res.statusCode, 201)
    assert.equal((await put('late', 'k', { x: '7' })).statusCode, 200)
    const got = await pull('late/k', allKey)
    assert.equal(got.statusCode, 200, got.body)
    assert.deepEqual(got.json().fields, { x: 7 })
  })
})

describe('record admin routes', () => {
  let t: TestApp
  const admin = () => bearer(t.adminKey)

  before(async () => {
    t = await startTestApp()
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/collections',
      headers: admin(),
      payload: {
        name: 'scores',
        key: 'customer_id',
        fields: [
          { name: 'score', type: 'number' },
          { name: 'band', type: 'string' },
        ],
      },
    })
    assert.equal(res.statusCode, 201, res.body)
  })
  after(async () => {
    await t.close()
  })

  it('PUT replaces a record: fields left out are removed', async () => {
    const url = '/api/v1/collections/scores/records/r1'
    await t.app.inject({ method: 'PUT', url, headers: admin(), payload: { fields: { score: 1, band: 'a' } } })
    const res = await t.app.inject({
      method: 'PUT',
      url,
      headers: admin(),
      payload: { fields: { score: '2.5' } },
    })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json().fields, { score: 2.5 })
    const got = await t.app.inject({ method: 'GET', url, headers: admin() })
    assert.deepEqual(got.json().fields, { score: 2.5 })
    // A record as GET returns it can be sent back.
    const back = await t.app.inject({ method: 'PUT', url, headers: admin(), payload: got.json() })
    assert.equal(back.statusCode, 200, back.body)
  })

  it('rejects invalid values and unknown fields, writing nothing', async () => {
    const url = '/api/v1/collections/scores/records/bad'
    const res = await t.app.inject({
      method: 'PUT',
      url,
      headers: admin(),
      payload: { fields: { score: 'lots' } },
    })
    assert.equal(res.statusCode, 400)
    assert.match(res.json().error.message, /score/)
    const unknown = await t.app.inject({
      method: 'PATCH',
      url,
      headers: admin(),
      payload: { fields: { colour: 'red' } },
    })
    assert.equal(unknown.statusCode, 400)
    assert.match(unknown.json().error.message, /colour/)
    assert.equal((await t.app.inject({ method: 'GET', url, headers: admin() })).statusCode, 404)
    const noCollection = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/collections/nosuch/records/k',
      headers: admin(),
      payload: { fields: {} },
    })
    assert.equal(noCollection.statusCode, 404)
    assert.equal(noCollection.json().error.code, 'RIFFLE_UNKNOWN_COLLECTION')
  })

  it('PATCH null removes a field; DELETE removes the record', async () => {
    const url = '/api/v1/collections/scores/records/r2'
    await t.app.inject({ method: 'PUT', url, headers: admin(), payload: { fields: { score: 1, band: 'b' } } })
    const res = await t.app.inject({
      method: 'PATCH',
      url,
      headers: admin(),
      payload: { fields: { band: null } },
    })
    assert.deepEqual(res.json().fields, { score: 1 })
    assert.equal((await t.app.inject({ method: 'DELETE', url, headers: admin() })).statusCode, 204)
    assert.equal((await t.app.inject({ method: 'GET', url, headers: admin() })).statusCode, 404)
    const again = await t.app.inject({ method: 'DELETE', url, headers: admin() })
    assert.equal(again.statusCode, 404)
    assert.equal(again.json().error.code, 'RIFFLE_NOT_FOUND')
  })

  it('browses records in key order, page by page', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `p${String(i).padStart(2, '0')}`)
    await t.riffle.pull.write(
      'scores',
      keys.map((k, i) => ({ key: k, set: { score: i }, writer: 'test' })),
    )
    const seen: string[] = []
    let after: string | undefined
    let pages = 0
    do {
      const q = new URLSearchParams({ limit: '5', ...(after ? { after } : {}) })
      const res = await t.app.inject({
        method: 'GET',
        url: `/api/v1/collections/scores/records?${q}`,
        headers: admin(),
      })
      assert.equal(res.statusCode, 200, res.body)
      const body = res.json()
      for (const item of body.items) {
        assert.equal(typeof item.updatedAt, 'string')
        if (item.key.startsWith('p')) assert.equal(item.writer, 'test')
      }
      seen.push(...body.items.map((r: { key: string }) => r.key))
      after = body.next
      pages++
    } while (after && pages < 10)
    assert.deepEqual(
      seen.filter((k) => k.startsWith('p')),
      keys,
    )
    assert.deepEqual(seen, [...seen].sort())
    const bad = await t.app.inject({
      method: 'GET',
      url: '/api/v1/collections/scores/records?limit=5000',
      headers: admin(),
    })
    assert.equal(bad.statusCode, 400)
  })
})
