import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/log.js'
import { openRiffle } from '../../src/runtime.js'
import { tempDir } from '../helpers.js'
import { activation, range } from './fixtures.js'

const BIN = fileURLToPath(new URL('../../bin/riffle.js', import.meta.url))

describe('riffle history (the built CLI)', () => {
  const tmp = tempDir()
  const dataDir = join(tmp.dir, 'data')
  const riffle = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [BIN, 'history', ...args], {
      encoding: 'utf8',
      env: { ...process.env, RIFFLE_DATA_DIR: dataDir, RIFFLE_DATABASE_URL: '', ...env },
    })
    return { code: r.status, out: r.stdout, err: r.stderr }
  }

  const bigDir = join(tmp.dir, 'big')

  before(async () => {
    // enough for a pipe's buffer to fill, so that `head` is gone while the export still writes
    const big = await openRiffle(loadConfig({ RIFFLE_DATA_DIR: bigDir }), createLogger('silent'))
    await big.history.append(range(20_000).map((i) => activation(i)))
    await big.close()
    const r = await openRiffle(loadConfig({ RIFFLE_DATA_DIR: dataDir }), createLogger('silent'))
    // one record from 2020 (past any retention), the rest now
    await r.history.append([
      activation(0, { outputTime: Date.parse('2020-01-01T00:00:00Z') }),
      ...range(9, 1).map((i) => activation(i, { outputTime: Date.now() })),
    ])
    await r.close()
  })
  after(() => tmp.cleanup())

  it('keeps the embedded history in its own SQLite file', () => {
    assert.ok(readFileSync(join(dataDir, 'history.db')).length > 0)
  })

  it('exports to standard output with progress on standard error, or to a file', () => {
    const r = riffle(['export', '--format', 'csv'])
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out.trim().split('\n').length, 11, 'a header and ten records')
    assert.match(r.err, /exported 10 records/)
    const file = join(tmp.dir, 'out', 'recent.jsonl')
    const f = riffle(['export', '--format', 'jsonl', '--since', '7d', '-o', file])
    assert.equal(f.code, 0, f.err)
    assert.equal(f.out.trim(), file)
    assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 9)
  })

  it('stops quietly when the reader of standard output goes away (`| head`; was: a stack trace for EPIPE)', () => {
    const r = spawnSync(
      'sh',
      ['-c', `"${process.execPath}" "${BIN}" history export --format jsonl --quiet | head -c 10`],
      { encoding: 'utf8', env: { ...process.env, RIFFLE_DATA_DIR: bigDir, RIFFLE_DATABASE_URL: '' } },
    )
    assert.equal(r.stdout.length, 10)
    assert.equal(r.stderr, '')
  })

  it('manages export consumers and exports incrementally', () => {
    const dir = join(tmp.dir, 'crm')
    const unknown = riffle(['export', '--format', 'jsonl', '--consumer', 'crm-loader', '-o', dir])
    assert.equal(unknown.code, 1)
    assert.match(unknown.err, /RIFFLE_UNKNOWN_CONSUMER: export consumer "crm-loader" is not registered/)
    assert.match(unknown.err, /riffle history consumers add crm-loader/)

    assert.match(riffle(['consumers', 'add', 'crm-loader']).out, /registered export consumer crm-loader/)
    const dup = riffle(['consumers', 'add', 'crm-loader'])
    assert.equal(dup.code, 1)
    assert.match(dup.err, /RIFFLE_CONFLICT/)
    assert.match(riffle(['consumers', 'list']).out, /crm-loader\t0\t10\t\tnever\t0/)

    const first = riffle([
      'export',
      '--format',
      'jsonl',
      '--consumer',
      'crm-loader',
      '-o',
      dir,
      '--max-records',
      '4',
    ])
    assert.equal(first.code, 0, first.err)
    assert.match(first.err, /wrote 4 records to .*crm-loader-000000000001-000000000004\.jsonl/)
    const second = riffle(['export', '--format', 'jsonl', '--consumer', 'crm-loader', '-o', dir])
    assert.match(second.err, /wrote 6 records/)
    const third = riffle(['export', '--format', 'jsonl', '--consumer', 'crm-loader', '-o', dir])
    assert.equal(third.code, 0)
    assert.match(third.err, /nothing new for consumer crm-loader/)
    assert.match(riffle(['consumers', 'list']).out, /crm-loader\t10\t0\t\t\d{4}-.*\t10/)

    assert.match(riffle(['consumers', 'remove', 'crm-loader']).out, /removed export consumer crm-loader/)
    assert.match(riffle(['consumers', 'remove', 'crm-loader']).err, /RIFFLE_UNKNOWN_CONSUMER/)
  })

  it('gives clear errors for a bad format, time, range or option', () => {
    const format = riffle(['export', '--format', 'xml'])
    assert.notEqual(format.code, 0)
    assert.match(format.err, /Allowed choices are csv, jsonl, parquet/)
    const time = riffle(['export', '--format', 'csv', '--since', 'last tuesday'])
    assert.equal(time.code, 1)
    assert.match(time.err, /RIFFLE_BAD_TIME_RANGE: since: "last tuesday" is not a time/)
    const empty = riffle(['export', '--format', 'csv', '--since', '2026-02-01', '--until', '2026-01-01'])
    assert.match(empty.err, /RIFFLE_BAD_TIME_RANGE: the time range is empty/)
    const parquet = riffle(['export', '--format', 'parquet'])
    assert.match(parquet.err, /needs an output file/)
    const register = riffle(['export', '--format', 'csv', '--register'])
    assert.match(register.err, /--register needs --consumer/)
    const days = riffle(['purge'], { RIFFLE_HISTORY_RETENTION_DAYS: 'forever' })
    assert.equal(days.code, 2)
    assert.match(days.err, /RIFFLE_HISTORY_RETENTION_DAYS: must be a whole number of days/)
  })

  it('applies retention on demand', () => {
    riffle(['consumers', 'add', 'slow'])
    const blocked = riffle(['purge'], { RIFFLE_HISTORY_RETENTION_DAYS: '30' })
    assert.equal(blocked.code, 0, blocked.err)
    assert.match(blocked.out, /purged 0 records/)
    assert.match(blocked.err, /1 older records kept: not yet exported by slow/)
    riffle(['consumers', 'remove', 'slow'])
    const r = riffle(['purge'], { RIFFLE_HISTORY_RETENTION_DAYS: '30' })
    assert.match(r.out, /purged 1 records/)
  })
})
