import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { DuckDBInstance } from '@duckdb/node-api'
import { parse } from 'csv-parse/sync'
import type { SqlDatabase } from '../../src/db/sql.js'
import { isRiffleError } from '../../src/errors.js'
import { type ExportOptions, exportHistory } from '../../src/history/export.js'
import { toRecord } from '../../src/history/schema.js'
import { HistoryStore } from '../../src/history/store.js'
import { tempDir } from '../helpers.js'
import { activation, backends, range, T0 } from './fixtures.js'

const CHILD = fileURLToPath(new URL('./export-child.ts', import.meta.url))

const rejectsWith = (code: string, message?: RegExp) => (e: unknown) => {
  assert.ok(isRiffleError(e), String(e))
  assert.equal(e.code, code)
  if (message) assert.match(e.message, message)
  return true
}

async function duck<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  const instance = await DuckDBInstance.create(':memory:')
  const conn = await instance.connect()
  try {
    return (await conn.runAndReadAll(sql)).getRowObjectsJson() as T[]
  } finally {
    conn.closeSync()
    instance.closeSync()
  }
}

/** Every activation id in a directory's export files, in file order. */
async function idsIn(dir: string, format: 'csv' | 'jsonl' | 'parquet'): Promise<string[]> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(`.${format}`))
    .sort()
  const ids: string[] = []
  for (const f of files) {
    const path = join(dir, f)
    if (format === 'jsonl')
      ids.push(
        ...readFileSync(path, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).id),
      )
    else if (format === 'csv')
      ids.push(...(parse(readFileSync(path), { columns: true }) as Array<{ id: string }>).map((r) => r.id))
    else ids.push(...(await duck<{ id: string }>(`select id from read_parquet('${path}')`)).map((r) => r.id))
  }
  return ids
}

for (const backend of backends) {
  describe(`output history export on ${backend.name}`, () => {
    let db: SqlDatabase
    let url: string
    let dataDir: string
    let done: () => Promise<void>
    let store: HistoryStore
    const out = tempDir('riffle-export-')

    before(async () => {
      ;({ db, url, dataDir, done } = await backend.open())
      store = await HistoryStore.open(db)
      await store.append([
        ...range(40).map((i) => activation(i, { campaign: i % 4 === 0 ? 'winback' : 'welcome' })),
        activation(40, {
          campaign: 'nightly',
          source: { kind: 'run', runId: 'r1' },
          eventTime: null,
          cell: '',
          reason: 'quota, "hard" limit',
          status: 'suppressed',
        }),
      ])
    })
    after(async () => {
      await db.close()
      await done()
      out.cleanup()
    })

    const run = (opts: ExportOptions) => exportHistory(store, opts)

    it('exports JSON Lines in the API record shape, to a file or standard output', async () => {
      const file = join(out.dir, 'all.jsonl')
      const progress: number[] = []
      const r = await run({
        format: 'jsonl',
        output: file,
        chunk: 7,
        onProgress: (p) => progress.push(p.done),
      })
      assert.equal(r.records, 41)
      assert.equal(r.file, file)
      assert.deepEqual(progress.slice(0, 3), [7, 14, 21])
      const lines = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
      const expected = (await store.list({}, { limit: 100 })).items
        .sort((a, b) => a.seq - b.seq)
        .map(toRecord)
      assert.deepEqual(lines, expected, 'every line equals the API record')
      assert.equal(lines[40]!.reason, 'quota, "hard" limit')
      assert.equal(lines[40]!.eventTime, null)

      const stdout = new PassThrough()
      const chunks: Buffer[] = []
      stdout.on('data', (c: Buffer) => chunks.push(c))
      const s = await run({ format: 'jsonl', stdout, campaign: 'winback' })
      assert.equal(s.records, 10)
      assert.equal(s.file, null)
      assert.equal(Buffer.concat(chunks).toString().trim().split('\n').length, 10)
    })

    it('exports CSV that a CSV reader reads back, quoting what needs quoting', async () => {
      const file = join(out.dir, 'range.csv')
      const r = await run({ format: 'csv', output: file, since: T0 + 10_000, until: T0 + 20_000 })
      assert.equal(r.records, 10)
      const rows = parse(readFileSync(file), { columns: true }) as Array<Record<string, string>>
      assert.equal(rows.length, 10)
      assert.deepEqual(Object.keys(rows[0]!), [
        'seq',
        'id',
        'campaign',
        'campaign_version',
        'cell',
        'customer_key',
        'source_topic',
        'source_partition',
        'source_offset',
        'source_run',
        'status',
        'event_time',
        'output_time',
        'content',
        'deliveries',
        'reason',
      ])
      assert.equal(rows[0]!.output_time, new Date(T0 + 10_000).toISOString())
      assert.deepEqual(JSON.parse(rows[0]!.content!), {
        offer_code: 'THX-10',
        message: 'Thanks, "friend",\nsee you!',
      })
      const all = join(out.dir, 'all.csv')
      await run({ format: 'csv', output: all })
      const last = (parse(readFileSync(all), { columns: true }) as Array<Record<string, string>>).at(-1)!
      assert.equal(last.reason, 'quota, "hard" limit')
      assert.equal(last.source_run, 'r1')
      assert.equal(last.event_time, '')
    })

    it('exports Parquet with typed columns: timestamps, integers, JSON', async () => {
      const file = join(out.dir, 'all.parquet')
      const r = await run({ format: 'parquet', output: file })
      assert.equal(r.records, 41)
      const rows = await duck<Record<string, string | null>>(
        `select seq, id, campaign_version, source_partition, event_time, output_time, content->>'offer_code' as code, reason, cell, typeof(output_time) as t, typeof(content) as ct from read_parquet('${file}') order by seq`,
      )
      assert.equal(rows.length, 41)
      assert.equal(rows[0]!.t, 'TIMESTAMP WITH TIME ZONE')
      assert.equal(rows[0]!.ct, 'JSON')
      assert.equal(rows[5]!.code, 'THX-5')
      assert.equal(rows[5]!.campaign_version, 1)
      assert.equal(rows[5]!.source_partition, 2)
      const epoch = await duck<{ ms: string }>(
        `select epoch_ms(output_time) as ms from read_parquet('${file}') order by seq limit 1 offset 5`,
      )
      assert.equal(Number(epoch[0]!.ms), T0 + 5_000)
      assert.equal(rows[40]!.event_time, null)
      assert.equal(rows[40]!.reason, 'quota, "hard" limit')
      assert.equal(rows[40]!.cell, '', 'an empty string stays an empty string, not a null')
      assert.equal(
        readdirSync(out.dir).filter((f) => f.includes('.tmp-')).length,
        0,
        'no temporary file is left behind',
      )
    })

    it('rejects an unknown format, a bad range, and Parquet to standard output', async () => {
      await assert.rejects(
        run({ format: 'xml' as 'csv' }),
        rejectsWith('RIFFLE_BAD_REQUEST', /unknown export format "xml"/),
      )
      await assert.rejects(
        run({ format: 'csv', since: T0 + 5, until: T0 }),
        rejectsWith('RIFFLE_BAD_TIME_RANGE'),
      )
      await assert.rejects(run({ format: 'parquet' }), rejectsWith('RIFFLE_BAD_REQUEST', /-o FILE/))
    })

    it('exports incrementally: each record once per consumer, across runs', async () => {
      const dir = join(out.dir, 'crm')
      await assert.rejects(
        run({ format: 'jsonl', output: dir, consumer: 'crm' }),
        rejectsWith('RIFFLE_UNKNOWN_CONSUMER', /riffle history consumers add crm/),
      )
      await assert.rejects(
        run({ format: 'jsonl', output: dir, consumer: 'crm', register: true, campaign: 'welcome' }),
        rejectsWith('RIFFLE_BAD_REQUEST', /cannot be combined/),
      )
      const first = await run({
        format: 'jsonl',
        output: dir,
        consumer: 'crm',
        register: true,
        maxRecords: 30,
      })
      assert.equal(first.records, 30)
      assert.match(first.file!, /crm-000000000001-000000000030\.jsonl$|crm-\d{12}-\d{12}\.jsonl$/)
      const second = await run({ format: 'jsonl', output: dir, consumer: 'crm' })
      assert.equal(second.records, 11)
      const third = await run({ format: 'jsonl', output: dir, consumer: 'crm' })
      assert.deepEqual(third, {
        records: 0,
        file: null,
        range: { from: third.range!.from, to: third.range!.from },
      })
      await store.append([activation(41), activation(42), activation(3, { campaign: 'welcome' })])
      const fourth = await run({ format: 'jsonl', output: dir, consumer: 'crm' })
      assert.equal(fourth.records, 2, 'only the new records; the replayed one was never appended again')
      const ids = await idsIn(dir, 'jsonl')
      assert.equal(ids.length, 43)
      assert.equal(new Set(ids).size, 43)
      const c = await store.requireConsumer('crm')
      assert.equal(c.exported, 43)
      assert.equal(c.watermark, await store.maxSeq())
      await store.removeConsumer('crm')
    })

    it('leaves the watermark where it was when an export fails part-way, and retries the same range', async () => {
      const dir = join(out.dir, 'fail')
      await store.addConsumer('fail')
      await assert.rejects(
        run({
          format: 'csv',
          output: dir,
          consumer: 'fail',
          onStage: (s) => {
            if (s === 'written') throw new Error('disk full (simulated)')
          },
        }),
        /disk full/,
      )
      const c = await store.requireConsumer('fail')
      assert.equal(c.watermark, 0)
      assert.equal(c.pendingTo, await store.maxSeq())
      assert.deepEqual(readdirSync(dir), [], 'neither the file nor its temporary copy is left')
      await store.append([activation(43)])
      const retry = await run({ format: 'csv', output: dir, consumer: 'fail' })
      assert.equal(retry.range!.to, c.pendingTo, 'the retry exports the pending range, unchanged')
      const next = await run({ format: 'csv', output: dir, consumer: 'fail' })
      assert.equal(next.records, 1)
      const ids = await idsIn(dir, 'csv')
      assert.equal(ids.length, await store.count({ afterSeq: 0 }))
      assert.equal(new Set(ids).size, ids.length)
      await store.removeConsumer('fail')
    })

    it('cleans up what a run killed during the Parquet conversion left, its DuckDB spill directory included (regression: EISDIR)', async () => {
      const dir = join(out.dir, 'spilled')
      await store.addConsumer('spill')
      const stale = join(dir, '.spill-000000000001-000000000041.parquet.tmp-99999')
      mkdirSync(`${stale}.duckdb-tmp`, { recursive: true })
      writeFileSync(join(`${stale}.duckdb-tmp`, 'duckdb_temp_storage-0.tmp'), 'x')
      writeFileSync(`${stale}.csv`, 'partial')
      const r = await run({ format: 'parquet', output: dir, consumer: 'spill' })
      assert.equal(r.records, await store.count({ afterSeq: 0 }))
      assert.deepEqual(
        readdirSync(dir).filter((f) => f.includes('.tmp-')),
        [],
        'the killed run’s files are gone',
      )
      await store.removeConsumer('spill')
    })

    it('removes what a killed export to the same file left, not what a live one is writing', async () => {
      const dir = join(out.dir, 'plain')
      mkdirSync(dir, { recursive: true })
      const file = join(dir, 'all.parquet')
      // a process that has ended, and one that is alive (this test's parent)
      const dead = spawnSync(process.execPath, ['-e', '0']).pid!
      const killed = join(dir, `.all.parquet.tmp-${dead}`)
      writeFileSync(`${killed}.csv`, 'partial')
      mkdirSync(`${killed}.duckdb-tmp`)
      writeFileSync(join(`${killed}.duckdb-tmp`, 'duckdb_temp_storage-0.tmp'), 'x')
      const live = `.all.parquet.tmp-${process.ppid}.csv`
      writeFileSync(join(dir, live), 'being written')
      const other = `.other.parquet.tmp-${dead}`
      writeFileSync(join(dir, other), 'another file’s')
      const r = await run({ format: 'parquet', output: file })
      assert.equal(r.records, await store.count({ afterSeq: 0 }))
      assert.deepEqual(readdirSync(dir).sort(), [live, other, 'all.parquet'].sort())
    })

    it('exports each record exactly once across a crash after the rename, before the watermark moved', async () => {
      const dir = join(out.dir, 'renamed')
      await store.addConsumer('crm-loader')
      const child = spawnSync(
        process.execPath,
        ['--import', 'tsx', CHILD, 'crash-at', 'renamed', dataDir, url, dir, 'jsonl'],
        { encoding: 'utf8' },
      )
      assert.equal(child.signal, 'SIGKILL', child.stderr)
      const c = await store.requireConsumer('crm-loader')
      assert.equal(c.watermark, 0, 'the crash came before the watermark moved')
      assert.equal(readdirSync(dir).filter((f) => f.endsWith('.jsonl')).length, 1, 'the file was renamed')
      const r = await run({ format: 'jsonl', output: dir, consumer: 'crm-loader' })
      assert.equal(r.range!.to, c.pendingTo)
      assert.equal(
        readdirSync(dir).filter((f) => f.endsWith('.jsonl')).length,
        1,
        'not written a second time',
      )
      assert.equal((await store.requireConsumer('crm-loader')).watermark, c.pendingTo)
      const ids = await idsIn(dir, 'jsonl')
      assert.equal(ids.length, await store.count({ afterSeq: 0 }))
      assert.equal(new Set(ids).size, ids.length)
      await store.removeConsumer('crm-loader')
    })

    it('exports each record exactly once across a SIGKILL in the middle of an export (the CLI)', async () => {
      await store.append(range(60_000, 1000).map((i) => activation(i)))
      const total = await store.count({ afterSeq: 0 })
      const dir = join(out.dir, 'killed')
      // a zone other than UTC: times must still be written as UTC instants
      const env = {
        ...process.env,
        RIFFLE_DATA_DIR: dataDir,
        RIFFLE_DATABASE_URL: url,
        TZ: 'America/New_York',
      }
      const cli = [
        '--import',
        'tsx',
        CHILD,
        'cli',
        'history',
        'export',
        '--format',
        'parquet',
        '--consumer',
        'crm-loader',
        '--register',
        '-o',
        dir,
      ]
      const child = spawn(process.execPath, cli, { env, stdio: ['ignore', 'pipe', 'pipe'] })
      let stderr = ''
      const killed = new Promise<NodeJS.Signals | null>((resolve) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString()
          if (/exporting: \d+\/\d+/.test(stderr)) child.kill('SIGKILL')
        })
        child.on('exit', (_code, signal) => resolve(signal))
      })
      assert.equal(await killed, 'SIGKILL', stderr)
      const c = await store.requireConsumer('crm-loader')
      assert.equal(c.watermark, 0, 'killed mid-way: the watermark did not move')
      assert.equal(c.pendingTo, await store.maxSeq())
      assert.equal(
        readdirSync(dir).filter((f) => f.endsWith('.parquet')).length,
        0,
        'no finished file from the killed run',
      )

      const again = spawnSync(process.execPath, cli, { env, encoding: 'utf8' })
      assert.equal(again.status, 0, again.stderr)
      assert.match(again.stderr, new RegExp(`wrote ${total} records to`))
      const file = again.stdout.trim()
      assert.ok(existsSync(file), file)
      assert.deepEqual(
        readdirSync(dir).filter((f) => f.includes('.tmp-')),
        [],
        'the killed run’s temporary files were cleaned up',
      )

      await store.append([activation(99_999)])
      const third = spawnSync(process.execPath, cli, { env, encoding: 'utf8' })
      assert.equal(third.status, 0, third.stderr)
      assert.match(third.stderr, /wrote 1 records/)

      const times = await duck<{ id: string; ms: string }>(
        `select id, epoch_ms(output_time) as ms from read_parquet('${file}') order by seq limit 1`,
      )
      assert.equal(Number(times[0]!.ms), (await store.get(times[0]!.id))!.outputTime)

      const ids = await idsIn(dir, 'parquet')
      assert.equal(ids.length, total + 1, 'every record, once')
      assert.equal(new Set(ids).size, total + 1)
      const c2 = await store.requireConsumer('crm-loader')
      assert.equal(c2.watermark, await store.maxSeq())
      assert.equal(c2.pendingTo, null)
    })
  })
}
