import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Liquid } from 'liquidjs'
import { checkTemplate } from '../../src/expressions/liquid.js'

// The same options as src/expressions/liquid.ts: what every template must render like.
const reference = new Liquid({ strictFilters: true, ownPropertyOnly: true, cache: false })

const simple = [
  'Thanks {{ profile.first_name }}!',
  "Thanks {{ profile.first_name | default: 'friend' }}!",
  'Hi {{profile.first_name|default:"you"}}, {{ event.amount }} {{ event.tags }}',
  '{{ event.count | default: 0 }}/{{ event.ratio | default: -1.50 }}',
  '{{ a.b.c.d }}{{ missing.x }}{{ event.name.length }}',
  'no outputs at all }} {',
  '{{ event.flag | default: "off" }} {{ event.zero | default: 7 }} {{ profile }}',
  '',
]
const general = [
  '{{ event.tags.size }} {{ event.tags.first }} {{ event.tags.last }}',
  '{% if profile %}yes{% else %}no{% endif %}',
  '{{- event.amount -}} !',
  '{{ event.name | upcase }}',
  '{{ true }} {{ nil }} {{ empty }}',
  '{{ event.tags[0] }}',
  "{{ event.name | default: 'it\\'s' }}",
]
const scopes: Array<Record<string, unknown>> = [
  {},
  { profile: null, event: {} },
  { profile: { first_name: 'Ann' }, event: { amount: 12.5, tags: ['a', 'b'], name: 'box', count: 3 } },
  {
    profile: { first_name: '' },
    event: { amount: 0, tags: [], name: '', flag: false, zero: 0, ratio: null, count: null },
  },
  { profile: { first_name: 42 }, event: { amount: -1e21, tags: [1, [2, 3], null, true], flag: true } },
  { profile: { first_name: ['x', 'y'] }, event: { name: 'é✓', amount: Number.NaN, tags: 'str' } },
  { profile: { first_name: { nested: 1 } }, event: { constructor: 'c', toString: 'own' } },
  { a: { b: { c: { d: 'deep' } } }, profile: 'text', event: { amount: 1, name: 'x'.repeat(3) } },
  { a: { b: null }, profile: ['p'], event: Object.assign(Object.create({ inherited: 'no' }), { amount: 2 }) },
]

test('simple templates render without liquidjs, exactly as liquidjs renders them', () => {
  for (const source of simple) {
    const t = checkTemplate(source)
    assert.ok(t.ok, source)
    assert.equal(t.fast, true, `fast path for ${source}`)
    for (const scope of scopes) {
      assert.equal(
        t.render(scope),
        reference.parseAndRenderSync(source, scope),
        `${source} with ${JSON.stringify(scope)}`,
      )
    }
  }
})

test('every other template is rendered by liquidjs', () => {
  for (const source of general) {
    const t = checkTemplate(source)
    assert.ok(t.ok, source)
    assert.equal(t.fast, false, `no fast path for ${source}`)
    for (const scope of scopes) {
      assert.equal(
        t.render(scope),
        reference.parseAndRenderSync(source, scope),
        `${source} with ${JSON.stringify(scope)}`,
      )
    }
  }
})

test('a template that does not parse is an error with its position', () => {
  const t = checkTemplate('Hi {{ profile.name | nosuchfilter }}')
  assert.equal(t.ok, false)
  if (!t.ok) assert.match(t.message, /nosuchfilter/)
})
