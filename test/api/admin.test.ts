import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Admin, Producer, stringSerializers } from '@platformatic/kafka'
import { bearer, kafkaBrokers, startTestApp, type TestApp, uniqueName } from '../helpers.js'

const stream = (name: string, topic: string) => ({
  name,
  topic,
  key: 'customer_id',
  fields: [
    { name: 'customer_id', type: 'string', required: true },
    { name: 'amount', type: 'number' },
  ],
})

describe('admin API', () => {
  let t: TestApp
  let ingestKey: string
  before(async () => {
    t = await startTestApp()
    ingestKey = (await t.riffle.keys.create(['ingest'])).key
  })
  after(async () => t.close())

  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, key = t.adminKey) =>
    t.app.inject({
      method,
      url,
      headers: bearer(key),
      ...(body === undefined ? {} : { payload: body as object }),
    })

  it('requires a key (401) with the admin scope (403), with stable codes', async () => {
    const none = await t.app.inject({ method: 'GET', url: '/api/v1/streams' })
    assert.equal(none.statusCode, 401)
    assert.equal(none.json().error.code, 'RIFFLE_UNAUTHORIZED')
    assert.equal(none.headers['www-authenticate'], 'Bearer')
    const wrong = await t.app.inject({
      method: 'GET',
      url: '/api/v1/streams',
      headers: bearer('rfl_000000000000_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'),
    })
    assert.equal(wrong.statusCode, 401)
    const scope = await call('GET', '/api/v1/streams', undefined, ingestKey)
    assert.equal(scope.statusCode, 403)
    assert.equal(scope.json().error.code, 'RIFFLE_FORBIDDEN')
    assert.match(scope.json().error.message, /admin/)
  })

  // Regression: the key was checked after the body was parsed and validated, so a request without
  // a key (or without the admin scope) got 422 or 400, with the schema's complaints, instead.
  it('checks the key before the body: 401 and 403 whatever the body holds', async () => {
    for (const payload of ['{"name": "x", "topic": 5}', '{"name": ']) {
      const json = { 'content-type': 'application/json' }
      const none = await t.app.inject({ method: 'POST', url: '/api/v1/streams', headers: json, payload })
      assert.equal(none.statusCode, 401, none.body)
      assert.equal(none.json().error.code, 'RIFFLE_UNAUTHORIZED')
      const scope = await t.app.inject({
        method: 'POST',
        url: '/api/v1/streams',
        headers: { ...json, ...bearer(ingestKey) },
        payload,
      })
      assert.equal(scope.statusCode, 403, scope.body)
      assert.equal(scope.json().error.code, 'RIFFLE_FORBIDDEN')
    }
    const query = await t.app.inject({ method: 'GET', url: '/api/v1/streams/x/sample?limit=nope' })
    assert.equal(query.statusCode, 401)
  })

  it('stops accepting a revoked key', async () => {
    const { key, apiKey } = await t.riffle.keys.create(['admin'])
    assert.equal((await call('GET', '/api/v1/streams', undefined, key)).statusCode, 200)
    await t.riffle.keys.revoke(apiKey.id)
    assert.equal((await call('GET', '/api/v1/streams', undefined, key)).statusCode, 401)
  })

  it('creates, reads, replaces, lists and deletes streams', async () => {
    const name = uniqueName('clicks')
    const created = await call('POST', '/api/v1/streams', stream(name, 'web.clicks'))
    assert.equal(created.statusCode, 201, created.body)
    assert.equal(created.json().version, 1)
    assert.match(created.json().updatedBy, /^key:/)
    assert.equal(
      (await call('POST', '/api/v1/streams', stream(name, 'web.clicks'))).json().error.code,
      'RIFFLE_CONFLICT',
    )
    const replaced = await call('PUT', `/api/v1/streams/${name}`, stream(name, 'web.clicks2'))
    assert.equal(replaced.statusCode, 200)
    assert.equal(replaced.json().version, 2)
    assert.equal((await call('GET', `/api/v1/streams/${name}`)).json().definition.topic, 'web.clicks2')
    const versions = await call('GET', `/api/v1/streams/${name}/versions`)
    assert.deepEqual(
      versions.json().items.map((v: { version: number }) => v.version),
      [2, 1],
    )
    assert.equal(
      (await call('GET', `/api/v1/streams/${name}/versions/1`)).json().definition.topic,
      'web.clicks',
    )
    assert.ok(
      (await call('GET', '/api/v1/streams')).json().items.some((s: { name: string }) => s.name === name),
    )
    assert.equal((await call('DELETE', `/api/v1/streams/${name}`)).statusCode, 204)
    assert.equal((await call('GET', `/api/v1/streams/${name}`)).statusCode, 404)
  })

  it('gives campaigns created through the API a draft status, then activates and pauses them', async () => {
    const s = uniqueName('orders')
    await call('POST', '/api/v1/streams', stream(s, 'shop.orders'))
    const name = uniqueName('welcome')
    const c = await call('POST', '/api/v1/campaigns', {
      name,
      trigger: { stream: s },
      where: 'event.amount > 10.0',
    })
    assert.equal(c.statusCode, 201, c.body)
    assert.equal(c.json().definition.status, 'draft')
    assert.equal(
      (await call('POST', `/api/v1/campaigns/${name}/activate`)).json().definition.status,
      'active',
    )
    const paused = await call('POST', `/api/v1/campaigns/${name}/pause`)
    assert.equal(paused.json().definition.status, 'paused')
    assert.equal(paused.json().version, 3)
    const inUse = await call('DELETE', `/api/v1/streams/${s}`)
    assert.equal(inUse.statusCode, 409)
    assert.match(inUse.json().error.message, /still in use/)
  })

  it('rejects invalid definitions with 422 and every issue, storing nothing', async () => {
    const name = uniqueName('bad')
    const r = await call('POST', '/api/v1/campaigns', {
      name,
      trigger: { stream: 'nope' },
      where: 'event.x +',
    })
    assert.equal(r.statusCode, 422)
    assert.equal(r.json().error.code, 'RIFFLE_INVALID_DEFINITION')
    assert.ok(r.json().error.issues.some((i: { path: string }) => i.path === 'trigger.stream'))
    const structural = await call('POST', '/api/v1/streams', {
      name,
      topic: 'x',
      key: 'k',
      fields: [{ name: 'k', type: 'money' }],
    })
    assert.equal(structural.statusCode, 422)
    assert.equal(structural.json().error.issues[0].path, 'fields[0].type')
    assert.equal((await call('GET', `/api/v1/campaigns/${name}`)).statusCode, 404)
  })

  it('answers malformed JSON with 400, a stable code, and the line and column', async () => {
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/v1/streams',
      headers: { ...bearer(t.adminKey), 'content-type': 'application/json' },
      payload: '{\n  "name": "x",\n  "topic": y\n}',
    })
    assert.equal(r.statusCode, 400)
    assert.equal(r.json().error.code, 'RIFFLE_INVALID_JSON')
    // Regression: the message said only that the body was not valid JSON, not where.
    assert.match(r.json().error.message, /Unexpected token 'y' at line 3, column 12$/)
    assert.deepEqual(r.json().error.issues, [
      { path: '(document)', message: "Unexpected token 'y'", line: 3, column: 12 },
    ])
    const proto = await t.app.inject({
      method: 'POST',
      url: '/api/v1/streams',
      headers: { ...bearer(t.adminKey), 'content-type': 'application/json' },
      payload: '{"name": "x", "__proto__": {"admin": true}}',
    })
    assert.equal(proto.statusCode, 400)
    assert.equal(proto.json().error.code, 'RIFFLE_INVALID_JSON')
  })

  it('applies and exports a whole definitions file as YAML', async () => {
    const s = uniqueName('views')
    const yaml = `streams:\n  - name: ${s}\n    topic: web.views\n    key: customer_id\n    fields:\n      - { name: customer_id, type: string }\n`
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/v1/definitions/apply',
      headers: { ...bearer(t.adminKey), 'content-type': 'application/yaml' },
      payload: yaml,
    })
    assert.equal(r.statusCode, 200, r.body)
    assert.deepEqual(r.json().created, [`stream ${s}`])
    const bad = await t.app.inject({
      method: 'POST',
      url: '/api/v1/definitions/apply',
      headers: { ...bearer(t.adminKey), 'content-type': 'application/yaml' },
      payload: 'streams:\n  - name: x\n   topic: y\n',
    })
    assert.equal(bad.statusCode, 400)
    assert.equal(bad.json().error.code, 'RIFFLE_INVALID_YAML')
    assert.equal(bad.json().error.issues[0].line, 3)
    const exported = await t.app.inject({
      method: 'GET',
      url: '/api/v1/definitions',
      headers: { ...bearer(t.adminKey), accept: 'application/yaml' },
    })
    assert.match(exported.body, new RegExp(`- name: ${s}\\n {4}topic: web.views`))
  })

  it('serves the OpenAPI document at /docs, health without a key', async () => {
    const doc = await t.app.inject({ method: 'GET', url: '/docs/json' })
    assert.equal(doc.statusCode, 200)
    const paths = Object.keys(doc.json().paths)
    for (const p of [
      '/api/v1/streams',
      '/api/v1/campaigns/{name}/activate',
      '/api/v1/streams/{name}/sample',
      '/api/v1/streams/infer',
    ]) {
      assert.ok(paths.includes(p), `${p} is documented`)
    }
    assert.equal((await t.app.inject({ method: 'GET', url: '/docs' })).statusCode < 400, true)
    assert.equal((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
    assert.equal((await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
    const unknown = await t.app.inject({ method: 'GET', url: '/nope' })
    assert.equal(unknown.statusCode, 404)
    assert.equal(unknown.json().error.code, 'RIFFLE_NOT_FOUND')
  })

  describe('stream tools on a real Kafka broker', () => {
    const topic = uniqueName('test.sample')
    const name = uniqueName('sampled')
    before(async () => {
      const producer = new Producer({
        clientId: 'test',
        bootstrapBrokers: kafkaBrokers(),
        serializers: stringSerializers,
        autocreateTopics: true,
      })
      const messages = Array.from({ length: 20 }, (_, i) => ({
        topic,
        key: `c${i}`,
        value: JSON.stringify({
          customer_id: `c${i}`,
          amount: i + 0.5,
          qty: i,
          vip: i % 2 === 0,
          location: { store_id: `s${i % 3}` },
          ts: new Date(1_700_000_000_000 + i).toISOString(),
        }),
      }))
      await producer.send({ messages })
      await producer.send({ messages: [{ topic, key: 'x', value: 'not json' }] })
      await producer.close()
      await call('POST', '/api/v1/streams', { ...stream(name, topic) })
    })

    it('samples the newest messages without committing offsets', async () => {
      const r = await call('GET', `/api/v1/streams/${name}/sample?limit=5`)
      assert.equal(r.statusCode, 200, r.body)
      const msgs = r.json().messages
      assert.equal(msgs.length, 5)
      assert.equal(msgs[0].value, 'not json')
      assert.equal(msgs[1].json.customer_id, 'c19')
      const again = await call('GET', `/api/v1/streams/${name}/sample?limit=5`)
      assert.deepEqual(
        again.json().messages.map((m: { offset: string }) => m.offset),
        msgs.map((m: { offset: string }) => m.offset),
      )
      // No consumer group holds a committed offset on the topic (its name is this test's own).
      const admin = new Admin({ clientId: 'test', bootstrapBrokers: kafkaBrokers() })
      try {
        const groups = [...(await admin.listGroups()).keys()]
        const offsets = await admin.listConsumerGroupOffsets({ groups })
        const committed = offsets.filter((g) => g.topics.some((tp) => tp.name === topic))
        assert.deepEqual(
          committed.map((g) => g.groupId),
          [],
        )
      } finally {
        await admin.close()
      }
    })

    it('infers typed fields with nested paths from a topic', async () => {
      const r = await call('POST', '/api/v1/streams/infer', { topic, limit: 50 })
      assert.equal(r.statusCode, 200, r.body)
      const body = r.json()
      assert.equal(body.sampled, 20)
      assert.equal(body.skipped, 1)
      const byName = Object.fromEntries(body.fields.map((f: { name: string }) => [f.name, f]))
      assert.deepEqual(byName.customer_id, { name: 'customer_id', type: 'string', required: true })
      assert.equal(byName.amount.type, 'number')
      assert.equal(byName.qty.type, 'integer')
      assert.equal(byName.vip.type, 'boolean')
      assert.deepEqual(byName.store_id, {
        name: 'store_id',
        type: 'string',
        required: true,
        path: 'location.store_id',
      })
      assert.equal(byName.ts.type, 'timestamp')
      assert.equal(body.key, 'customer_id')
      assert.equal(body.time, 'ts')
    })

    it('says clearly when a topic does not exist', async () => {
      const r = await call('POST', '/api/v1/streams/infer', { topic: uniqueName('missing') })
      assert.equal(r.statusCode, 404)
      assert.match(r.json().error.message, /does not exist/)
      const bad = await call('POST', '/api/v1/streams/infer', { topic: 'bad topic' })
      assert.equal(bad.statusCode, 400)
    })
  })
})
