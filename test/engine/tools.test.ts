import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { loadConfig } from '../../src/config.js'
import { parseDefinitionsText } from '../../src/definitions/source.js'
import { createLogger } from '../../src/log.js'
import { type Server, startServer } from '../../src/server.js'
import { kafkaBrokers, tempDir, uniqueName } from '../helpers.js'
import { createTopic, readTopic, waitFor } from './harness.js'

describe('riffle start: ingest, dry run, trace, readiness (in process, real Kafka)', () => {
  const tmp = tempDir()
  const topic = uniqueName('tools.purchases')
  let server: Server
  let admin: string
  let ingest: string
  const call = async (method: string, path: string, key: string | undefined, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    })
    return { status: res.status, body: (await res.json().catch(() => undefined)) as any }
  }

  before(async () => {
    await createTopic(topic, 1)
    const config = loadConfig({
      RIFFLE_DATA_DIR: tmp.dir,
      RIFFLE_PORT: '0',
      RIFFLE_KAFKA_BROKERS: kafkaBrokers().join(','),
      RIFFLE_ENGINE_GROUP: uniqueName('tools'),
      RIFFLE_ENGINE_ID: uniqueName('tools'),
    })
    server = await startServer(config, createLogger('silent'))
    await server.riffle.defs.apply(
      parseDefinitionsText(`
streams:
  - name: purchases
    topic: ${topic}
    key: customer_id
    fields:
      - { name: customer_id, type: string, required: true }
      - { name: amount, type: number, required: true }
collections:
  - name: profile
    key: customer_id
    fields: [ { name: first_name, type: string }, { name: segment, type: string } ]
campaigns:
  - name: thanks
    trigger: { stream: purchases }
    enrich: [ { collection: profile, key: event.customer_id, as: profile } ]
    where: event.amount >= 100.0 && (profile == null || profile.segment != "staff")
    content:
      message: { template: "Thanks {{ profile.first_name | default: 'friend' }}!" }
      detail: { template: "v{{ campaign.version }} {{ cell }} {{ event.amount }} {{ campaign.name }}" }
    outputs:
      - pull: { collection: profile, key: event.customer_id, set: { segment: '"buyer"' } }
`),
      { actor: 'test' },
    )
    await server.riffle.pull.prepare((await server.riffle.defs.snapshot()).definitions.collections)
    await server.riffle.pull.write('profile', [
      { key: 'ann', set: { first_name: 'Ann', segment: 'gold' }, writer: 'test' },
    ])
    admin = (await server.riffle.keys.create(['admin'])).key
    ingest = (await server.riffle.keys.create(['ingest'])).key
  })
  after(async () => {
    await server?.close()
    tmp.cleanup()
  })

  it('is ready once the engine has joined its group', async () => {
    const r = await waitFor('ready', async () => {
      const x = await call('GET', '/readyz', undefined)
      return x.status === 200 && x
    })
    assert.deepEqual(
      r.body.checks.map((c: { name: string }) => c.name),
      ['database', 'pull store', 'kafka', 'engine'],
    )
  })

  it('dry-runs a campaign step by step and writes nothing', async () => {
    const before = await server.riffle.history.list({ campaign: 'thanks' })
    const fired = await call('POST', '/api/v1/campaigns/thanks/dry-run', admin, {
      event: { customer_id: 'ann', amount: 150 },
    })
    assert.equal(fired.status, 200, JSON.stringify(fired.body))
    const d = fired.body.decision
    assert.equal(d.fired, true)
    assert.deepEqual(
      d.steps.map((s: { step: string; result: string }) => [s.step, s.result]),
      [
        ['where (event part)', 'true'],
        ['where (after enrichment)', 'true'],
        ['cell', 'default'],
        ['content', 'rendered'],
      ],
    )
    assert.equal(d.content.message, 'Thanks Ann!')
    // Liquid sees plain values: the campaign's version (a CEL integer) as a number
    assert.equal(d.content.detail, 'v1 default 150 thanks')
    assert.deepEqual(d.outputs[0].channel, 'pull:profile')
    assert.deepEqual(d.outputs[0].wouldWrite.set, { segment: 'buyer' })

    const small = await call('POST', '/api/v1/campaigns/thanks/dry-run', admin, {
      event: { customer_id: 'ann', amount: 5 },
    })
    assert.equal(small.body.decision.status, 'not_matched')
    assert.deepEqual(small.body.decision.steps, [{ step: 'where (event part)', result: 'false' }])

    const bad = await call('POST', '/api/v1/campaigns/thanks/dry-run', admin, {
      event: { customer_id: 'ann', amount: 'lots' },
    })
    assert.equal(bad.body.deadLetter.reason, 'wrong_type')

    assert.equal(
      (await server.riffle.pull.get('profile', 'ann'))?.fields.segment,
      'gold',
      'the dry run wrote nothing',
    )
    assert.equal((await server.riffle.history.list({ campaign: 'thanks' })).items.length, before.items.length)
    assert.equal((await call('POST', '/api/v1/campaigns/nope/dry-run', admin, { event: {} })).status, 404)
  })

  it('ingests over HTTP with the ingest scope only, validating against the stream', async () => {
    const denied = await call('POST', '/ingest/v1/purchases', admin.replace(/.$/, 'x'), {
      customer_id: 'bob',
      amount: 120,
    })
    assert.equal(denied.status, 401)
    const bad = await call('POST', '/ingest/v1/purchases', ingest, { customer_id: 'bob' })
    assert.equal(bad.status, 400)
    assert.match(bad.body.error.message, /required field "amount"/)
    const malformed = await call('POST', '/ingest/v1/purchases', ingest, '{"customer_id": ')
    assert.equal(malformed.status, 400)
    assert.equal((await call('POST', '/ingest/v1/nostream', ingest, { a: 1 })).status, 404)
    const ok = await call('POST', '/ingest/v1/purchases', ingest, { customer_id: 'bob', amount: 120 })
    assert.equal(ok.status, 202, JSON.stringify(ok.body))
    assert.equal(ok.body.topic, topic)

    // The engine picks it up; the trace explains it.
    await waitFor(
      'activation',
      async () => (await server.riffle.history.list({ campaign: 'thanks' })).items.length === 1,
    )
    const t = await call(
      'GET',
      `/api/v1/trace?topic=${topic}&partition=${ok.body.partition}&offset=${ok.body.offset}`,
      admin,
    )
    assert.equal(t.status, 200, JSON.stringify(t.body))
    assert.equal(t.body.message.key, 'bob')
    const thanks = t.body.campaigns.find((c: { campaign: string }) => c.campaign === 'thanks')
    assert.equal(thanks.recorded[0].status, 'sent')
    assert.equal(
      (await call('GET', `/api/v1/trace?topic=${topic}&partition=0&offset=999999`, admin)).status,
      404,
    )
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    assert.match(metrics, /riffle_activations_total\{campaign="thanks",cell="default",status="sent"\} 1/)
  })

  it('ingests concurrent requests, each once, and keeps ingesting after them', async () => {
    const n = 40
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        call('POST', '/ingest/v1/purchases', ingest, { customer_id: `burst-${i}`, amount: 5 }),
      ),
    )
    assert.deepEqual(
      results.map((r) => r.status),
      Array(n).fill(202),
      JSON.stringify(results.find((r) => r.status !== 202)?.body),
    )
    assert.equal(new Set(results.map((r) => r.body.offset)).size, n, 'each request has its own offset')
    const after = await call('POST', '/ingest/v1/purchases', ingest, {
      customer_id: 'burst-after',
      amount: 5,
    })
    assert.equal(after.status, 202, JSON.stringify(after.body))
    const read = await readTopic(topic, (m) => m.some((x) => x.key === 'burst-after'), 15_000, 500)
    const burst = read.filter((m) => m.key?.startsWith('burst-'))
    assert.equal(burst.length, n + 1, 'every ingested event is in the topic once')
    assert.equal(new Set(burst.map((m) => m.key)).size, n + 1)
  })
})
