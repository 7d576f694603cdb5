import assert from 'node:assert/strict'
import { test } from 'node:test'
import { plain, toJson } from '../../src/engine/json.js'

test('plain returns a value that is plain already as it is, without copying', () => {
  const v = { a: 1, b: 'x', c: [true, null, { d: 2.5 }], e: undefined }
  assert.equal(plain(v), v)
  const list = [1, 'two', { three: 3 }]
  assert.equal(plain(list), list)
  assert.equal(plain('s'), 's')
  assert.equal(plain(null), null)
})

test('plain converts BigInt, Date, Map, bytes and class instances at any depth', () => {
  const when = new Date('2026-11-26T08:00:00.000Z')
  const v = {
    n: 5n,
    huge: 2n ** 70n,
    at: when,
    nested: [{ m: new Map<unknown, unknown>([[1n, when]]) }],
    bytes: new Uint8Array([104, 105]),
  }
  const out = plain(v)
  assert.notEqual(out, v)
  assert.deepEqual(out, {
    n: 5,
    huge: '1180591620717411303424',
    at: '2026-11-26T08:00:00.000Z',
    nested: [{ m: { '1': '2026-11-26T08:00:00.000Z' } }],
    bytes: 'aGk=',
  })
  // the input is left as it was
  assert.equal(v.n, 5n)
  class Point {
    constructor(
      readonly x: number,
      readonly y: number,
    ) {}
  }
  const p = plain({ p: new Point(1, 2) }) as { p: unknown }
  assert.equal(Object.getPrototypeOf(p.p), Object.prototype)
  assert.deepEqual(p.p, { x: 1, y: 2 })
  assert.equal(toJson({ n: 7n }), '{"n":7}')
})
