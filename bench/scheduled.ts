/**
 * `npm run bench:scheduled`: a scheduled campaign over a 1M-row audience, with a score computed in
 * SQL and one CEL field, written to the Pull Marketing database. Rows/s end to end (count, stream,
 * activateBatch, pull writes, output history) per pull backend, and the process's peak RSS.
 *
 *   RIFFLE_BENCH_ROWS   audience rows (default 1000000)
 *   RIFFLE_BENCH_RUNS   runs per backend; medians are reported (default 3)
 *   RIFFLE_REDIS_URL    Redis for the second backend (skipped when unset)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { loadConfig } from '../src/config.js'
import { openDataStore } from '../src/datastore/store.js'
import { parseDefinitionsText } from '../src/definitions/source.js'
import { TargetPolicy } from '../src/engine/ssrf.js'
import { WebhookSender } from '../src/engine/webhook.js'
import { createLogger } from '../src/log.js'
import { openRiffle } from '../src/runtime.js'
import { Scheduler } from '../src/scheduler/scheduler.js'

const ROWS = Number(process.env.RIFFLE_BENCH_ROWS ?? 1_000_000)
const RUNS = Number(process.env.RIFFLE_BENCH_RUNS ?? 3)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

const COLLECTION = `benchscores${process.pid}${Date.now() % 100000}`
const DEFS = `
collections:
  - name: ${COLLECTION}
    key: customer_id
    fields: [ { name: score, type: number }, { name: band, type: string } ]
campaigns:
  - name: bench-scores
    trigger: { manual: true }
    audience:
      sql: "select customer_id, 1 / (1 + exp(-(-1.5 + 0.02 * recency - 0.3 * orders + 0.001 * spend))) as score from customers"
    content:
      band: 'row.score >= 0.5 ? "high" : "low"'
    outputs:
      - pull: { collection: ${COLLECTION}, key: row.customer_id, set: { score: row.score, band: content.band } }
`

async function bench(pullUrl: string, label: string): Promise<void> {
  const rates: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'riffle-bench-sched-'))
    try {
      const duck = await DuckDBInstance.create(join(dir, 'datastore.duckdb'))
      const c = await duck.connect()
      await c.run(
        `create table customers as select 'c' || lpad(i::varchar, 8, '0') as customer_id, (i % 365)::integer as recency, (i % 17)::integer as orders, ((i * 7919) % 5000)::double as spend from range(${ROWS}) t(i)`,
      )
      c.closeSync()
      duck.closeSync()
      const config = loadConfig({ RIFFLE_DATA_DIR: dir, RIFFLE_PULLSTORE_URL: pullUrl })
      const log = createLogger('silent')
      const riffle = await openRiffle(config, log)
      await riffle.defs.apply(parseDefinitionsText(DEFS), { actor: 'bench' })
      await riffle.pull.prepare((await riffle.defs.snapshot()).definitions.collections)
      const datastore = await openDataStore(config.datastoreUrl, dir)
      const webhooks = new WebhookSender(new TargetPolicy())
      const s = await Scheduler.open({
        db: riffle.db,
        defs: riffle.defs,
        datastore,
        pull: riffle.pull,
        history: riffle.history,
        webhooks,
        log,
      })
      const t0 = performance.now()
      const end = await (await s.runNow('bench-scores')).done
      const secs = (performance.now() - t0) / 1000
      if (end.status !== 'succeeded' || end.rowsDone !== ROWS)
        throw new Error(`run ${end.status}: ${end.errors.join('; ')}`)
      rates.push(ROWS / secs)
      process.stdout.write(
        `  ${label} run ${i + 1}: ${fmt(ROWS)} rows in ${secs.toFixed(1)} s = ${fmt(ROWS / secs)} rows/s\n`,
      )
      if (pullUrl.startsWith('redis')) {
        // leave Redis as it was: delete the benchmark's keys
        const { Redis } = await import('ioredis')
        const r = new Redis(pullUrl)
        let cursor = '0'
        do {
          const [next, keys] = await r.scan(cursor, 'MATCH', `*${COLLECTION}*`, 'COUNT', 10000)
          cursor = next
          if (keys.length) await r.del(...keys)
        } while (cursor !== '0')
        r.disconnect()
      }
      await s.stop()
      await webhooks.close()
      await datastore.close()
      await riffle.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  process.stdout.write(`${label}: median ${fmt(median(rates))} rows/s over ${RUNS} run(s)\n`)
}

process.stdout.write(
  `bench:scheduled — ${fmt(ROWS)}-row audience, SQL score + one CEL field, to the pull store\n`,
)
await bench('sqlite:', 'embedded (DuckDB -> SQLite pull store)')
if (process.env.RIFFLE_REDIS_URL) await bench(process.env.RIFFLE_REDIS_URL, 'DuckDB -> Redis pull store')
process.stdout.write(`peak RSS ${fmt(process.resourceUsage().maxRSS / 1024)} MB\n`)
