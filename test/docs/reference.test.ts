import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { it } from 'node:test'
import { definitionsReference } from '../../src/docs/reference.js'

it('docs/definitions-reference.md is generated from the current schemas (run `npm run docs`)', () => {
  const committed = readFileSync(new URL('../../docs/definitions-reference.md', import.meta.url), 'utf8')
  assert.equal(committed, definitionsReference())
  assert.match(committed, /\| `outputs\[\]\.pull\.onlyIfNewer` \| boolean \|/)
})
