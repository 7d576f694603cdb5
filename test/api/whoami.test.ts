import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { bearer, startTestApp, type TestApp } from '../helpers.js'

describe('GET /api/v1/whoami', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
  })
  after(async () => t.close())

  const whoami = (headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'GET', url: '/api/v1/whoami', headers })

  it("answers an admin key with its id, name and scopes, and never the key's secret", async () => {
    const r = await whoami(bearer(t.adminKey))
    assert.equal(r.statusCode, 200, r.body)
    const keyId = /^rfl_([0-9a-f]{12})_/.exec(t.adminKey)![1]
    assert.deepEqual(r.json(), { keyId, name: 'test admin', scopes: ['admin'], admin: true })
    const secret = t.adminKey.slice(`rfl_${keyId}_`.length)
    assert.ok(!r.body.includes(secret), 'the secret is not in the answer')
  })

  it('answers a key without admin: it is not admin, and lists exactly its scopes', async () => {
    const { key, apiKey } = await t.riffle.keys.create(['pull:read:profile', 'ingest'])
    const r = await whoami(bearer(key))
    assert.equal(r.statusCode, 200, r.body)
    assert.deepEqual(r.json(), {
      keyId: apiKey.id,
      name: null,
      scopes: ['ingest', 'pull:read:profile'],
      admin: false,
    })
    // The same key is refused by the admin API: whoami needs no scope, the admin routes do.
    const admin = await t.app.inject({ method: 'GET', url: '/api/v1/streams', headers: bearer(key) })
    assert.equal(admin.statusCode, 403)
  })

  it('refuses a missing, malformed, unknown or revoked key with 401', async () => {
    const none = await whoami()
    assert.equal(none.statusCode, 401)
    assert.equal(none.json().error.code, 'RIFFLE_UNAUTHORIZED')
    assert.equal(none.headers['www-authenticate'], 'Bearer')
    for (const bad of ['rfl_not_a_key', `rfl_000000000000_${'x'.repeat(43)}`]) {
      const r = await whoami(bearer(bad))
      assert.equal(r.statusCode, 401, bad)
      assert.equal(r.json().error.code, 'RIFFLE_UNAUTHORIZED')
      assert.match(String(r.headers['www-authenticate']), /invalid_token/)
    }
    const { key, apiKey } = await t.riffle.keys.create(['admin'])
    assert.equal((await whoami(bearer(key))).statusCode, 200)
    await t.riffle.keys.revoke(apiKey.id)
    assert.equal((await whoami(bearer(key))).statusCode, 401)
  })

  it('is documented in the OpenAPI schema with its answer', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json()
    const op = doc.paths['/api/v1/whoami']?.get
    assert.ok(op, '/api/v1/whoami is documented')
    assert.deepEqual(op.tags, ['auth'])
    const props = op.responses['200'].content['application/json'].schema.properties
    assert.deepEqual(Object.keys(props).sort(), ['admin', 'keyId', 'name', 'scopes'])
  })
})
