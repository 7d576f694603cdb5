/**
 * `npm run bench:scheduled-memory`: memory stays flat while a scheduled campaign streams a large
 * audience. One run over RIFFLE_BENCH_ROWS rows (default 10,000,000) on the embedded stores (DuckDB
 * data store, SQLite pull store and history), a score computed in SQL and one CEL field written to
 * the Pull Marketing database. RSS and V8 heap are sampled every 250 ms; a line is printed at every
 * million rows done, then the peak and the spread after the first million.
 *
 *   RIFFLE_BENCH_ROWS    audience rows (default 10000000)
 *   RIFFLE_BENCH_DIR     where the temporary data directory goes (default the OS temp dir)
 *
 * Not part of the test suite: it takes minutes and a few GB of disk (the history of 10M activations).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCustomers, openScheduledBench, scoreDefinitions } from './scheduled-setup.js'

const ROWS = Number(process.env.RIFFLE_BENCH_ROWS ?? 10_000_000)
const STEP = 1_000_000
const MB = (n: number) => (n / 1024 / 1024).toFixed(0).padStart(5)
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

const DEFS = scoreDefinitions('memscores', 'memory-flat')

const dir = mkdtempSync(join(process.env.RIFFLE_BENCH_DIR ?? tmpdir(), 'riffle-bench-mem-'))
try {
  process.stdout.write(`bench:scheduled-memory — ${fmt(ROWS)}-row audience on the embedded stores (${dir})\n`)
  const t0 = performance.now()
  await createCustomers(dir, ROWS)
  process.stdout.write(`table created in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)

  const bench = await openScheduledBench(dir, DEFS)
  const s = bench.scheduler

  let peakRss = 0
  let peakHeap = 0
  const sample = () => {
    const m = process.memoryUsage()
    peakRss = Math.max(peakRss, m.rss)
    peakHeap = Math.max(peakHeap, m.heapUsed)
    return m
  }
  const before = sample()
  process.stdout.write(`before the run: RSS ${MB(before.rss)} MB, heap ${MB(before.heapUsed)} MB\n`)
  process.stdout.write('     rows done   RSS MB  heap MB  peak RSS MB   rows/s so far\n')
  const sampler = setInterval(sample, 250)
  let next = STEP
  const atSteps: number[] = []
  const started = performance.now()
  s.onProgress = (run) => {
    while (run.rowsDone >= next) {
      const m = sample()
      atSteps.push(m.rss)
      const secs = (performance.now() - started) / 1000
      process.stdout.write(
        `${fmt(next).padStart(14)}  ${MB(m.rss)}    ${MB(m.heapUsed)}        ${MB(peakRss)}   ${fmt(run.rowsDone / secs).padStart(13)}\n`,
      )
      next += STEP
    }
  }
  const end = await (await s.runNow('memory-flat')).done
  clearInterval(sampler)
  const secs = (performance.now() - started) / 1000
  if (end.status !== 'succeeded' || end.rowsDone !== ROWS)
    throw new Error(`run ${end.status}: ${end.errors.join('; ')}`)
  const after1M = atSteps.slice(1)
  process.stdout.write(
    `${fmt(ROWS)} rows in ${secs.toFixed(1)} s = ${fmt(ROWS / secs)} rows/s; peak RSS ${MB(peakRss).trim()} MB, peak heap ${MB(peakHeap).trim()} MB\n`,
  )
  if (after1M.length > 1)
    process.stdout.write(
      `RSS at the million marks after the first: min ${MB(Math.min(...after1M)).trim()} MB, max ${MB(Math.max(...after1M)).trim()} MB\n`,
    )
  await bench.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
