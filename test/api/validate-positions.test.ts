/**
 * POST /api/v1/definitions/validate, as the campaign designer calls it while one types: each CEL
 * and Liquid error carries its position inside the expression or template (`span`), which the
 * designer marks in the text.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Issue } from '../../src/errors.js'
import { bearer, startTestApp, type TestApp } from '../helpers.js'

describe('validation errors with their position in the expression', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
  })
  after(async () => t.close())

  const stream = {
    name: 'orders',
    topic: 'shop.orders',
    key: 'customer_id',
    fields: [
      { name: 'customer_id', type: 'string', required: true },
      { name: 'amount', type: 'number' },
    ],
  }

  async function issuesOf(campaign: Record<string, unknown>): Promise<Issue[]> {
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/v1/definitions/validate',
      headers: bearer(t.adminKey),
      payload: { streams: [stream], campaigns: [{ name: 'c', status: 'draft', ...campaign }] },
    })
    assert.equal(r.statusCode, 200, r.body)
    return r.json().issues
  }

  function at(issues: Issue[], path: string): Issue {
    const found = issues.find((i) => i.path === path)
    assert.ok(found, `an issue at ${path}; got ${JSON.stringify(issues)}`)
    return found
  }

  it('places a CEL syntax error at the end of an unfinished expression', async () => {
    const issue = at(
      await issuesOf({ trigger: { stream: 'orders' }, where: 'event.amount >= ' }),
      'campaigns[0].where',
    )
    assert.deepEqual(issue.span, { start: 16, end: 16, line: 1, column: 17 })
    assert.match(issue.message, /Unexpected token/)
  })

  it('places an unknown name on its own line and column, spanning the name', async () => {
    const where = 'event.amount > 1.0 &&\n  nope.x == 1'
    const issue = at(await issuesOf({ trigger: { stream: 'orders' }, where }), 'campaigns[0].where')
    assert.ok(issue.span, 'the issue has a span')
    assert.equal(issue.span.line, 2)
    assert.equal(issue.span.column, 3)
    assert.equal(where.slice(issue.span.start, issue.span.end), 'nope')
  })

  it("places the real-time rule's `row` where it is used", async () => {
    const expr = '"x-" + row.segment'
    const issue = at(
      await issuesOf({ trigger: { stream: 'orders' }, content: { code: expr } }),
      'campaigns[0].content.code',
    )
    assert.match(issue.message, /real-time/)
    assert.equal(expr.slice(issue.span!.start, issue.span!.end), 'row')
    assert.equal(issue.span!.column, 8)
  })

  it('spans the whole expression when its type is wrong', async () => {
    const issue = at(
      await issuesOf({ trigger: { stream: 'orders' }, where: 'event.amount' }),
      'campaigns[0].where',
    )
    assert.match(issue.message, /must be bool/)
    assert.deepEqual(issue.span, { start: 0, end: 12, line: 1, column: 1 })
  })

  it('places a Liquid error at the tag or output at fault', async () => {
    const template = 'Hello\n{{ event.customer_id | nope }}!'
    const issue = at(
      await issuesOf({ trigger: { stream: 'orders' }, content: { msg: { template } } }),
      'campaigns[0].content.msg.template',
    )
    assert.match(issue.message, /filter/)
    assert.equal(issue.span!.line, 2)
    assert.equal(issue.span!.column, 1)
    assert.equal(template.slice(issue.span!.start, issue.span!.end), '{{ event.customer_id | nope }}')
  })

  it('gives no span to issues that are not about an expression, and none when all is well', async () => {
    const issues = await issuesOf({ trigger: { stream: 'nope' } })
    assert.equal(at(issues, 'campaigns[0].trigger.stream').span, undefined)
    assert.deepEqual(await issuesOf({ trigger: { stream: 'orders' }, where: 'event.amount >= 10.0' }), [])
  })
})
