import assert from 'node:assert/strict'
import { it } from 'node:test'
import { conjuncts, splitWhere } from '../../src/expressions/split.js'

it('splits a where at top-level && into event-only and enrichment parts', () => {
  const r = splitWhere(
    'event.amount >= 100.0 && (profile == null || profile.segment != "staff")',
    new Set(['profile']),
  )
  assert.equal(r.eventOnly, 'event.amount >= 100.0')
  assert.equal(r.rest, '(profile == null || profile.segment != "staff")')
})

it('keeps a top-level || whole, and ignores names inside strings and after dots', () => {
  assert.deepEqual(conjuncts('a.x > 1 || profile.y'), ['a.x > 1 || profile.y'])
  const r = splitWhere('event.note == "profile && x" && event.profile == "p"', new Set(['profile']))
  assert.equal(r.eventOnly, '(event.note == "profile && x") && (event.profile == "p")')
  assert.equal(r.rest, undefined)
  assert.deepEqual(splitWhere('profile.score > 0.5', new Set(['profile'])), {
    eventOnly: undefined,
    rest: 'profile.score > 0.5',
  })
})

it('does not split inside parentheses, lists or ternaries', () => {
  assert.deepEqual(conjuncts('(a && b) && [c && d].size() > 0'), ['(a && b)', '[c && d].size() > 0'])
  assert.deepEqual(conjuncts('a ? b && c : d'), ['a ? b && c : d'])
})
