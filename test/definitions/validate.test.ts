import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { validateFile } from '../../src/definitions/service.js'
import { parseDefinitionsText } from '../../src/definitions/source.js'
import type { Issue } from '../../src/errors.js'

const EXAMPLE = readFileSync(new URL('../../examples/definitions.yaml', import.meta.url), 'utf8')

function check(yaml: string): Issue[] {
  return validateFile(parseDefinitionsText(yaml, 'defs.yaml')).issues
}

/** The DESIGN.md example with one edit applied. */
function example(edit: (text: string) => string): string {
  const out = edit(EXAMPLE)
  assert.notEqual(out, EXAMPLE, 'the edit must change the example')
  return out
}

function expectIssue(issues: Issue[], path: string, pattern: RegExp): Issue {
  const found = issues.find((i) => i.path === path && pattern.test(i.message))
  assert.ok(
    found,
    `expected an issue at ${path} matching ${pattern}, got:\n${issues.map((i) => `${i.path}: ${i.message}`).join('\n')}`,
  )
  assert.equal(found.file, 'defs.yaml')
  assert.ok(typeof found.line === 'number' && found.line > 0, 'the issue names a line')
  return found
}

describe('definitions validation', () => {
  it('accepts the DESIGN.md example', () => {
    assert.deepEqual(check(EXAMPLE), [])
  })

  it('rejects an unknown stream reference', () => {
    const issues = check(
      example((t) => t.replace('trigger: { stream: purchases }', 'trigger: { stream: purchase }')),
    )
    expectIssue(issues, 'campaigns[0].trigger.stream', /unknown stream "purchase"/)
  })

  it('rejects an unknown collection reference in enrich and outputs', () => {
    const issues = check(
      example((t) =>
        t.replace(
          '- { collection: profile, key: event.customer_id, as: profile }',
          '- { collection: profiles, key: event.customer_id, as: profile }',
        ),
      ),
    )
    expectIssue(issues, 'campaigns[0].enrich[0].collection', /unknown collection "profiles"/)
  })

  it('rejects an unknown event field, naming it', () => {
    const issues = check(example((t) => t.replace('"THX-" + event.order_id', '"THX-" + event.order_no')))
    expectIssue(issues, 'campaigns[0].content.offer_code', /order_no/)
  })

  it('rejects an unknown field of a pull output', () => {
    const issues = check(
      example((t) =>
        t.replace('set: { last_offer: content.offer_code }', 'set: { last_offers: content.offer_code }'),
      ),
    )
    expectIssue(
      issues,
      'campaigns[0].outputs[1].pull.set.last_offers',
      /unknown field "last_offers" in collection "profile"/,
    )
  })

  it('rejects a type mismatch between a value and the field it is written to', () => {
    const issues = check(
      example((t) =>
        t.replace('set: { last_offer: content.offer_code }', 'set: { last_offer: event.amount }'),
      ),
    )
    expectIssue(
      issues,
      'campaigns[0].outputs[1].pull.set.last_offer',
      /type mismatch: field "last_offer" is string, but the value has type double/,
    )
  })

  it('rejects a where condition that is not bool', () => {
    const issues = check(
      example((t) =>
        t.replace(
          'where: event.amount >= 100.0 && (profile == null || profile.segment != "staff")',
          'where: event.amount',
        ),
      ),
    )
    expectIssue(issues, 'campaigns[0].where', /must be bool/)
  })

  it('reports CEL syntax errors', () => {
    const issues = check(
      example((t) => t.replace('where: event.amount >= 100.0 &&', 'where: event.amount >= && ')),
    )
    expectIssue(issues, 'campaigns[0].where', /CEL error/)
  })

  it('reports CEL type errors against the declared field types', () => {
    const issues = check(
      example((t) => t.replace('"THX-" + event.order_id', 'event.amount + event.order_id')),
    )
    expectIssue(issues, 'campaigns[0].content.offer_code', /no such overload: double \+ string/)
  })

  it('reports Liquid syntax errors and unknown template fields', () => {
    const bad = check(
      example((t) => t.replace("Thanks {{ profile.first_name | default: 'friend' }}!", 'Thanks {% if x %}')),
    )
    expectIssue(bad, 'campaigns[0].content.message.template', /Liquid error.*not closed/)
    const unknown = check(example((t) => t.replace('profile.first_name', 'profile.firstname')))
    expectIssue(unknown, 'campaigns[0].content.message.template', /unknown field "firstname"/)
  })

  it('rejects duplicate names', () => {
    const issues = check(example((t) => t.replace('- name: nightly-scores', '- name: big-spender-thanks')))
    expectIssue(issues, 'campaigns[1].name', /duplicate campaign name "big-spender-thanks"/)
    const fields = check(
      example((t) =>
        t.replace(
          '{ name: order_id, type: string, required: true }',
          '{ name: amount, type: string, required: true }',
        ),
      ),
    )
    expectIssue(fields, 'streams[0].fields[2].name', /duplicate field name "amount"/)
  })

  it('rejects invalid Kafka topic names', () => {
    const issues = check(example((t) => t.replace('topic: shop.purchases', 'topic: "shop purchases"')))
    expectIssue(issues, 'streams[0].topic', /not a valid Kafka topic name/)
    const out = check(example((t) => t.replace('topic: campaign.offers', 'topic: "campaign/offers"')))
    expectIssue(out, 'campaigns[0].outputs[0].kafka.topic', /not a valid Kafka topic name/)
  })

  it('rejects a real-time campaign that reads the data store, naming the expression', () => {
    const row = check(example((t) => t.replace('"THX-" + event.order_id', '"THX-" + row.order_id')))
    const i = expectIssue(
      row,
      'campaigns[0].content.offer_code',
      /only the event and the Pull Marketing database/,
    )
    assert.match(i.message, /`"THX-" \+ row.order_id`/)
    const sql = check(
      example((t) =>
        t.replace(
          'trigger: { stream: purchases }',
          'trigger: { stream: purchases }\n    audience: { sql: "select * from customers" }',
        ),
      ),
    )
    expectIssue(sql, 'campaigns[0].audience', /only the event and the Pull Marketing database/)
  })

  it('checks stream keys and event-time fields', () => {
    const key = check(
      example((t) => t.replace('key: customer_id             #', 'key: customer             #')),
    )
    expectIssue(key, 'streams[0].key', /unknown field "customer"/)
    const time = check(example((t) => t.replace('time: ts ', 'time: amount ')))
    expectIssue(time, 'streams[0].time', /must be timestamp/)
  })

  it('checks cron expressions and time zones', () => {
    const cron = check(example((t) => t.replace('"0 2 * * *"', '"0 25 * *"')))
    expectIssue(cron, 'campaigns[1].trigger.schedule', /invalid schedule/)
    const tz = check(example((t) => t.replace('Europe/London', 'Europe/Londres')))
    expectIssue(tz, 'campaigns[1].trigger.timezone', /unknown IANA time zone "Europe\/Londres"/)
  })

  it('reports structural problems with the property named', () => {
    const extra = check(example((t) => t.replace('format: json ', 'formatt: json ')))
    expectIssue(extra, 'streams[0]', /unknown property "formatt"/)
    const type = check(
      example((t) =>
        t.replace(
          '{ name: amount, type: number, required: true }',
          '{ name: amount, type: money, required: true }',
        ),
      ),
    )
    expectIssue(type, 'streams[0].fields[2].type', /must be one of/)
    const missing = check(example((t) => t.replace('    topic: shop.purchases\n', '')))
    expectIssue(missing, 'streams[0]', /missing required property "topic"/)
  })

  it('gives malformed YAML an error with line and column', () => {
    assert.throws(
      () => parseDefinitionsText('streams:\n  - name: x\n   topic: y\n', 'bad.yaml'),
      (e: Error & { code?: string; issues?: Issue[] }) => {
        assert.equal(e.code, 'RIFFLE_INVALID_YAML')
        assert.equal(e.issues?.[0]?.line, 3)
        assert.match(e.message, /^bad\.yaml:3:\d+: /)
        return true
      },
    )
  })

  // YAML takes `[1,]` and 'single quotes', so a .json file was accepted though it was not JSON.
  it('gives a malformed JSON file an error with line and column', () => {
    assert.throws(
      () => parseDefinitionsText('{\n  "streams": [\n    {"name": "x",}\n  ]\n}\n', 'defs.json'),
      (e: Error & { code?: string; issues?: Issue[] }) => {
        assert.equal(e.code, 'RIFFLE_INVALID_JSON')
        assert.deepEqual(
          [e.issues?.[0]?.file, e.issues?.[0]?.line, e.issues?.[0]?.column],
          ['defs.json', 3, 18],
        )
        assert.match(e.message, /^defs\.json:3:18: Expected double-quoted property name/)
        return true
      },
    )
    const stream = { name: 's', topic: 'a b', key: 'k', fields: [{ name: 'k', type: 'string' }] }
    const json = JSON.stringify({ streams: [stream] }, null, 2)
    const issues = validateFile(parseDefinitionsText(json, 'defs.json')).issues
    assert.ok(issues.some((i) => i.path === 'streams[0].topic' && i.line === 5 && i.file === 'defs.json'))
  })

  it('reports issues in file order', () => {
    const issues = check(
      example((t) =>
        t.replace('topic: shop.purchases', 'topic: "a b"').replace('"THX-" + event.order_id', 'event.nope'),
      ),
    )
    const lines = issues.map((i) => i.line ?? 0)
    assert.deepEqual(
      lines,
      [...lines].sort((a, b) => a - b),
    )
    assert.ok(issues.length >= 2)
  })
})
