import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { jsonSyntaxError } from '../src/json-syntax.js'

describe('jsonSyntaxError', () => {
  it('answers undefined for valid JSON', () => {
    for (const text of [
      '{"a":{"b":[1,{"c":null}]}}',
      '[1e5, -0.5E-3, true, false, null, "x\\n\\u00e9"]',
      ' 0 ',
    ])
      assert.equal(jsonSyntaxError(text), undefined, text)
  })

  it('names the line and column of the first error, also where JSON.parse gives no position', () => {
    const cases: Array<[string, number, number, RegExp]> = [
      ['{\n  "streams": [\n    {"name": "x",}\n  ]\n}', 3, 18, /property name/],
      ['{"a": 1,}', 1, 9, /property name/],
      ['{"a" 1}', 1, 6, /':'/],
      ['{\n  "a": x\n}', 2, 8, /Unexpected token 'x'$/],
      ['{"a": tru}', 1, 10, /Unexpected token '}'/],
      ['{"a": "b', 1, 9, /Unterminated string/],
      ['{"a": 01}', 1, 8, /Unexpected number/],
      ["{'a': 1}", 1, 2, /property name/],
      ['{"a":1}}', 1, 8, /after JSON$/],
      ['[1,2', 1, 5, /after array element/],
      ['', 1, 1, /end of JSON input/],
    ]
    for (const [text, line, column, message] of cases) {
      const e = jsonSyntaxError(text)
      assert.ok(e, text)
      assert.deepEqual([e.line, e.column], [line, column], text)
      assert.match(e.message, message)
      assert.doesNotMatch(e.message, /position/)
    }
  })
})
