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
import { createCustomers, openScheduledBench, scoreDefinitions } from './scheduled-setup.js'

const ROWS = Number(process.env.RIFFLE_BENCH_ROWS ?? 1_000_000)
const RUNS = Number(process.env.RIFFLE_BENCH_RUNS ?? 3)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

const COLLECTION = `benchscores${process.pid}${Date.now() % 100000}`
const DEFS = scoreDefinitions(COLLECTION, 'bench-scores')

async function bench(pullUrl: string, label: string): Promise<void> {
  const rates: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'riffle-bench-sched-'))
    try {
      await createCustomers(dir, ROWS)
      const bench = await openScheduledBench(dir, DEFS, pullUrl)
      const s = bench.scheduler
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
      await bench.close()
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
