/** `riffle pull load`: CSV and JSON Lines, bad rows by line number, skip or stop, idempotent re-runs. */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { openPullStore } from '../../src/pull/open.js'
import type { PullRecord } from '../../src/pull/store.js'
import { tempDir } from '../helpers.js'

const BIN = fileURLToPath(new URL('../../bin/riffle.js', import.meta.url))

const DEFS = `
collections:
  - name: profile
    key: customer_id
    fields:
      - { name: segment, type: string }
      - { name: churn_score, type: number }
      - { name: last_seen, type: timestamp }
      - { name: tags, type: array }
`

describe('riffle pull load', () => {
  const tmp = tempDir()
  const dataDir = join(tmp.dir, 'data')
  after(() => tmp.cleanup())
  const riffle = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: { ...process.env, RIFFLE_DATA_DIR: dataDir, RIFFLE_DATABASE_URL: '', RIFFLE_PULLSTORE_URL: '' },
    })
    return { code: r.status, out: r.stdout, err: r.stderr }
  }
  const file = (name: string, text: string) => {
    const f = join(tmp.dir, name)
    writeFileSync(f, text)
    return f
  }
  const records = async (): Promise<PullRecord[]> => {
    const store = await openPullStore('sqlite:', dataDir)
    try {
      await store.prepare([
        { name: 'profile', key: 'customer_id', fields: [{ name: 'segment', type: 'string' }] },
      ])
      const out: PullRecord[] = []
      let after: string | undefined
      do {
        const page = await store.scan('profile', { after, limit: 1000 })
        out.push(...page.records)
        after = page.next
      } while (after)
      return out
    } finally {
      await store.close()
    }
  }

  before(() => {
    const r = riffle('apply', '-f', file('defs.yaml', DEFS))
    assert.equal(r.code, 0, r.err)
  })

  it('loads a CSV file, reports bad rows by line and skips them, and re-runs idempotently', async () => {
    const lines = ['customer_id,segment,churn_score,last_seen']
    for (let i = 0; i < 12_000; i++) {
      lines.push(`c${String(i).padStart(5, '0')},seg${i % 3},${(i % 100) / 100},2025-01-01T00:00:00Z`)
    }
    lines[101] = 'c00100,seg1,not-a-number,' // line 102 of the file
    lines[5001] = 'c05000,seg2' // line 5002: too few columns
    const csv = file('profile.csv', `${lines.join('\n')}\n`)

    const first = riffle('pull', 'load', 'profile', csv, '--on-error', 'skip')
    assert.equal(first.code, 0, first.err)
    assert.match(first.err, /profile\.csv:102: .*churn_score/)
    assert.match(first.err, /profile\.csv:5002: /)
    assert.match(first.out, /loaded 11998 of 12000 rows into "profile", 2 bad rows skipped/)
    const loaded = await records()
    assert.equal(loaded.length, 11_998)
    const c7 = loaded.find((r) => r.key === 'c00007')!
    assert.deepEqual(c7.fields, { segment: 'seg1', churn_score: 0.07, last_seen: '2025-01-01T00:00:00.000Z' })
    assert.equal(c7.writer, 'load:profile.csv')
    assert.ok(!loaded.some((r) => r.key === 'c00100'))

    const again = riffle('pull', 'load', 'profile', csv, '--on-error', 'skip')
    assert.equal(again.code, 0, again.err)
    const reloaded = await records()
    assert.deepEqual(
      reloaded.map((r) => [r.key, r.fields]),
      loaded.map((r) => [r.key, r.fields]),
    )
  })

  it('stops at the first bad row by default, having loaded the rows before it', async () => {
    const csv = file('stop.csv', 'customer_id,segment\ns1,a\ns2,b\ns3,c\n,d\ns5,e\n')
    const r = riffle('pull', 'load', 'profile', csv)
    assert.equal(r.code, 1)
    assert.match(r.err, /stop\.csv:5: .*no key/)
    assert.match(r.err, /stopped at line 5: 3 rows before it were loaded/)
    const keys = (await records()).map((x) => x.key)
    assert.ok(keys.includes('s3'))
    assert.ok(!keys.includes('s5'))
  })

  it('loads JSON Lines, naming bad JSON and unknown fields by line', async () => {
    const jsonl = file(
      'profile.jsonl',
      [
        '{"customer_id": "j1", "segment": "x", "tags": ["a", "b"]}',
        '{"customer_id": "j2", "segment": "y"',
        '',
        '{"customer_id": "j3", "shoe_size": 42}',
        '{"customer_id": "j4", "churn_score": "0.5"}',
      ].join('\n'),
    )
    const r = riffle('pull', 'load', 'profile', jsonl, '--on-error', 'skip')
    assert.equal(r.code, 0, r.err)
    assert.match(r.err, /profile\.jsonl:2: not valid JSON/)
    assert.match(r.err, /profile\.jsonl:4: .*shoe_size/)
    assert.match(r.out, /loaded 2 of 4 rows/)
    const byKey = new Map((await records()).map((x) => [x.key, x.fields]))
    assert.deepEqual(byKey.get('j1'), { segment: 'x', tags: ['a', 'b'] })
    assert.deepEqual(byKey.get('j4'), { churn_score: 0.5 })
  })

  it('refuses a CSV header with unknown columns, and an unknown collection', () => {
    const csv = file('cols.csv', 'customer_id,segment,favourite_colour\nq1,a,red\n')
    const r = riffle('pull', 'load', 'profile', csv)
    assert.equal(r.code, 1)
    assert.match(r.err, /unknown column "favourite_colour"/)
    const u = riffle('pull', 'load', 'nosuch', csv)
    assert.equal(u.code, 1)
    assert.match(u.err, /RIFFLE_UNKNOWN_COLLECTION/)
  })
})
