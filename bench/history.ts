/**
 * `npm run bench:history`: the output history's append rate (embedded SQLite, and PostgreSQL for
 * reference), frequency-cap reads, and exporting 1M records to Parquet with the export's peak memory.
 *
 *   RIFFLE_BENCH_RECORDS   records per append run and in the export (default 1000000)
 *   RIFFLE_BENCH_BATCH     activations per append batch (default 1000, the engine's default batch)
 *   RIFFLE_BENCH_RUNS      runs of each measurement; medians are reported (default 3)
 *   RIFFLE_POSTGRES_URL    PostgreSQL server for the reference figures (skipped when unset)
 */
import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { openDatabase, type SqlDatabase } from '../src/db/sql.js'
import type { Activation } from '../src/history/activation.js'
import { exportHistory } from '../src/history/export.js'
import { HistoryStore } from '../src/history/store.js'

const RECORDS = Number(process.env.RIFFLE_BENCH_RECORDS ?? 1_000_000)
const BATCH = Number(process.env.RIFFLE_BENCH_BATCH ?? 1_000)
const RUNS = Number(process.env.RIFFLE_BENCH_RUNS ?? 3)
const CUSTOMERS = 200_000
const CAMPAIGNS = 20

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

/** Realistic activations: 20 campaigns, 200k customers in random order, 10% holdout. */
function makeBatch(from: number, n: number, now: number): Activation[] {
  const out: Activation[] = new Array(n)
  for (let i = 0; i < n; i++) {
    const o = from + i
    const campaign = `campaign-${o % CAMPAIGNS}`
    const holdout = o % 10 === 0
    out[i] = {
      id: `${campaign}@3/shop.purchases/${o % 12}/${o}`,
      campaign,
      campaignVersion: 3,
      cell: holdout ? 'holdout' : 'treatment',
      customerKey: `customer-${(o * 7919) % CUSTOMERS}`,
      source: { kind: 'stream', topic: 'shop.purchases', partition: o % 12, offset: String(o) },
      status: holdout ? 'holdout' : 'sent',
      eventTime: now - 40,
      outputTime: now,
      content: { offer_code: `THX-${o}`, message: 'Thanks for your order, Alex! Here is 10% off.' },
      deliveries: holdout
        ? {}
        : { 'kafka:campaign.offers': { status: 'ok' }, 'pull:profile': { status: 'ok' } },
    }
  }
  return out
}

async function appendRun(store: HistoryStore, records: number): Promise<{ rate: number; ms: number }> {
  const now = Date.now()
  let genMs = 0
  const t0 = performance.now()
  for (let n = 0; n < records; n += BATCH) {
    const g = performance.now()
    const batch = makeBatch(n, Math.min(BATCH, records - n), now)
    genMs += performance.now() - g
    await store.append(batch)
  }
  const ms = performance.now() - t0 - genMs
  return { rate: (records / ms) * 1000, ms }
}

async function sqliteAppend(): Promise<{ dir: string }> {
  console.log(`\n## Append, embedded SQLite: ${fmt(RECORDS)} activations, batches of ${fmt(BATCH)}`)
  const rates: number[] = []
  const settled: number[] = []
  let keep = ''
  for (let run = 1; run <= RUNS; run++) {
    const dir = mkdtempSync(join(tmpdir(), 'riffle-bench-history-'))
    const db = await openDatabase('sqlite:', dir, 'history.db')
    const store = await HistoryStore.open(db)
    const r = await appendRun(store, RECORDS)
    const s0 = performance.now()
    await store.indexSettled(300_000)
    const settleMs = performance.now() - s0
    rates.push(r.rate)
    settled.push(settleMs)
    console.log(
      `run ${run}: ${fmt(r.rate)} activations/s (${fmt(r.ms)} ms); customer index caught up ${fmt(settleMs)} ms later`,
    )
    if (run === RUNS) {
      await capReads(store)
      keep = dir
    }
    await store.close()
    await db.close()
    if (run !== RUNS) rmSync(dir, { recursive: true, force: true })
  }
  console.log(
    `median: ${fmt(median(rates))} activations/s; index caught up a median ${fmt(median(settled))} ms after the last append`,
  )
  return { dir: keep }
}

/** Frequency-cap reads: one countRecent per engine batch, for 1,000 customer keys. */
async function capReads(store: HistoryStore): Promise<void> {
  const times: number[] = []
  const since = Date.now() - 7 * 86_400_000
  for (let i = 0; i < 100; i++) {
    const keys = Array.from({ length: 1000 }, (_, k) => `customer-${(i * 1000 + k * 37) % CUSTOMERS}`)
    const t = performance.now()
    await store.countRecent({ customerKeys: keys, campaign: `campaign-${i % CAMPAIGNS}`, since })
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  console.log(
    `countRecent, 1,000 keys, one campaign, over ${fmt(RECORDS)} records: median ${times[50]!.toFixed(1)} ms, p99 ${times[98]!.toFixed(1)} ms`,
  )
}

async function postgresAppend(): Promise<void> {
  const base = process.env.RIFFLE_POSTGRES_URL
  if (!base) {
    console.log('\n## Append, PostgreSQL: skipped (RIFFLE_POSTGRES_URL is not set)')
    return
  }
  const records = Math.min(RECORDS, 200_000)
  console.log(`\n## Append, PostgreSQL (reference): ${fmt(records)} activations, batches of ${fmt(BATCH)}`)
  const rates: number[] = []
  for (let run = 1; run <= RUNS; run++) {
    const name = `bench_${randomUUID().replace(/-/g, '').slice(0, 12)}`
    const admin = new pg.Client({ connectionString: base })
    await admin.connect()
    await admin.query(`create database ${name}`)
    const u = new URL(base)
    u.pathname = `/${name}`
    let db: SqlDatabase | undefined
    try {
      db = await openDatabase(u.toString(), tmpdir())
      const store = await HistoryStore.open(db)
      const r = await appendRun(store, records)
      rates.push(r.rate)
      console.log(`run ${run}: ${fmt(r.rate)} activations/s`)
      await store.close()
    } finally {
      await db?.close()
      await admin.query(`drop database if exists ${name} with (force)`)
      await admin.end()
    }
  }
  console.log(`median: ${fmt(median(rates))} activations/s`)
}

/** Each export runs in a child process, so that its peak RSS is the export's alone. */
async function exports(dir: string): Promise<void> {
  console.log(`\n## Export ${fmt(RECORDS)} records (from the SQLite history above)`)
  const child = fileURLToPath(import.meta.url)
  const run = (format: string) => {
    const out = join(dir, `export.${format}`)
    const r = spawnSync(process.execPath, ['--import', 'tsx', child, 'export-child', dir, format, out], {
      encoding: 'utf8',
    })
    if (r.status !== 0) throw new Error(`export failed: ${r.stderr}`)
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      ms: number
      records: number
      rssMb: number
    }
    const size = statSync(out).size
    rmSync(out, { force: true })
    return { ...result, mb: size / 1e6 }
  }
  const parquet = []
  for (let i = 1; i <= RUNS; i++) {
    const r = run('parquet')
    parquet.push(r)
    console.log(
      `parquet run ${i}: ${fmt(r.records)} records in ${fmt(r.ms)} ms (${fmt((r.records / r.ms) * 1000)}/s), ${r.mb.toFixed(0)} MB file, peak RSS ${fmt(r.rssMb)} MB`,
    )
  }
  console.log(
    `parquet median: ${fmt(median(parquet.map((r) => r.ms)))} ms; peak RSS median ${fmt(median(parquet.map((r) => r.rssMb)))} MB`,
  )
  for (const format of ['csv', 'jsonl']) {
    const r = run(format)
    console.log(
      `${format}: ${fmt(r.ms)} ms, ${r.mb.toFixed(0)} MB file, peak RSS ${fmt(r.rssMb)} MB (one run, for reference)`,
    )
  }
}

async function exportChild(dir: string, format: string, out: string): Promise<void> {
  const db = await openDatabase('sqlite:', dir, 'history.db')
  const store = await HistoryStore.open(db)
  const t = performance.now()
  const r = await exportHistory(store, { format: format as 'parquet', output: out })
  const ms = performance.now() - t
  await store.close()
  await db.close()
  const rssMb = process.resourceUsage().maxRSS / 1024
  console.log(JSON.stringify({ ms, records: r.records, rssMb }))
}

if (process.argv[2] === 'export-child') {
  await exportChild(process.argv[3]!, process.argv[4]!, process.argv[5]!)
} else {
  console.log(`# Output history benchmark (node ${process.version}, ${RUNS} runs each, medians reported)`)
  const { dir } = await sqliteAppend()
  try {
    await exports(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  await postgresAppend()
}
