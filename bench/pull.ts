/**
 * `npm run bench:pull`: the Pull Marketing database, side by side on loopback.
 *
 * 1. Pull API on the embedded store against a bare Fastify route returning a constant (the
 *    ceiling): requests/s at saturation (wrk when installed, a C client that leaves the server
 *    more of a 2-core machine; else autocannon), and p50/p99 latency at a fixed offered rate, open
 *    loop (latency counted from when each request was due, so no coordinated omission), with
 *    microsecond resolution. Each server runs in its own process. The two are measured in turn,
 *    RIFFLE_BENCH_ROUNDS times, so that other work on the machine weighs on both alike; the
 *    figures are medians over the rounds (the req/s ratio: the median of each round's ratio).
 * 2. getMany of 500 keys, per backend (median over many runs).
 * 3. Loading records with write() in batches, per backend (records/s).
 *
 *   RIFFLE_BENCH_SECONDS      seconds per HTTP run (default 5)
 *   RIFFLE_BENCH_ROUNDS       rounds of HTTP runs, ceiling and Pull API in turn (default 3)
 *   RIFFLE_BENCH_RATE         offered rate for the latency runs, req/s (default 5000)
 *   RIFFLE_BENCH_LOAD         records loaded per backend (default 1000000)
 *   RIFFLE_BENCH_LOAD_SECONDS time cap per backend load; the rate is over what was loaded (default 60)
 *   RIFFLE_REDIS_URL, RIFFLE_MONGODB_URL  servers for the Redis and MongoDB-wire figures (skipped when unset)
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import hdr from 'hdr-histogram-js'
import { Redis } from 'ioredis'
import { Pool } from 'undici'
import type { Collection } from '../src/definitions/schema.js'
import type { MongoPullStore } from '../src/pull/mongodb.js'
import { openPullStore } from '../src/pull/open.js'
import { KEYS_PREFIX, RECORD_PREFIX } from '../src/pull/redis.js'
import type { PullStore, PullWrite } from '../src/pull/store.js'

const SECONDS = Number(process.env.RIFFLE_BENCH_SECONDS ?? 5)
const ROUNDS = Math.max(1, Number(process.env.RIFFLE_BENCH_ROUNDS ?? 3))
const RATE = Number(process.env.RIFFLE_BENCH_RATE ?? 5000)
const LOAD = Number(process.env.RIFFLE_BENCH_LOAD ?? 1_000_000)
const LOAD_SECONDS = Number(process.env.RIFFLE_BENCH_LOAD_SECONDS ?? 60)
const API_RECORDS = 100_000
const GETMANY_RECORDS = 100_000
const BATCH = 5_000

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const say = (s: string) => process.stderr.write(`${s}\n`)

interface Started {
  child: ChildProcess
  port: number
  key: string
}

async function startServer(mode: 'riffle' | 'ceiling', dataDir: string): Promise<Started> {
  const script = fileURLToPath(new URL('./pull-server.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', script, mode, dataDir, String(API_RECORDS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! })
    rl.once('line', resolve)
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)))
  })
  const { port, key } = JSON.parse(line) as { port: number; key: string }
  return { child, port, key }
}

async function stop(s: Started): Promise<void> {
  const exited = new Promise((resolve) => s.child.once('exit', resolve))
  s.child.kill('SIGTERM')
  await exited
}

interface HttpFigures {
  saturation: number
  cpuUs: number
  tool: string
  p50: number
  p99: number
  errors: number
}

const pathOf = (i: number) => `/pull/v1/profile/c${String(i).padStart(7, '0')}`

/** Requests/s at saturation: wrk when installed (lighter than a Node client on a 2-core box), else autocannon. */
async function saturation(
  s: Started,
  seconds: number,
): Promise<{ rps: number; errors: number; tool: string }> {
  const wrk = spawnSync('wrk', ['--version'], { encoding: 'utf8' })
  if (wrk.error === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'riffle-wrk-'))
    const script = join(dir, 'pull.lua')
    writeFileSync(
      script,
      `local i = 0
local auth = "Bearer ${s.key}"
request = function()
  i = (i + 7919) % ${API_RECORDS}
  return wrk.format("GET", string.format("/pull/v1/profile/c%07d", i), { ["Authorization"] = auth })
end
`,
    )
    const r = await new Promise<string>((resolve, reject) => {
      const child = spawn('wrk', ['-t1', '-c32', `-d${seconds}s`, '-s', script, `http://127.0.0.1:${s.port}`])
      let out = ''
      child.stdout.on('data', (d) => {
        out += d
      })
      child.once('error', reject)
      child.once('exit', () => resolve(out))
    })
    rmSync(dir, { recursive: true, force: true })
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r)?.[1] ?? Number.NaN)
    const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r)?.[1] ?? 0)
    return { rps, errors, tool: 'wrk -t1 -c32' }
  }
  let i = 0
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${s.port}`,
        headers: { authorization: `Bearer ${s.key}` },
        connections: 32,
        duration: seconds,
        requests: [
          {
            method: 'GET',
            setupRequest: ((req: { path: string }) => {
              i = (i + 7919) % API_RECORDS
              req.path = pathOf(i)
              return req
            }) as never,
          },
        ],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    )
  })
  return { rps: result.requests.average, errors: result.non2xx + result.errors, tool: 'autocannon -c32' }
}

/**
 * Latency at a fixed offered rate, open loop: request n is due at start + n/rate and its latency
 * is counted from then, so a stalled server is charged for the queue it causes (no coordinated
 * omission). Microsecond resolution.
 */
async function fixedRate(
  s: Started,
  rate: number,
  seconds: number,
): Promise<{ p50: number; p99: number; errors: number }> {
  const pool = new Pool(`http://127.0.0.1:${s.port}`, { connections: 64, pipelining: 1 })
  const hist = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  })
  const headers = { authorization: `Bearer ${s.key}` }
  const total = Math.round(rate * seconds)
  let sent = 0
  let done = 0
  let errors = 0
  let i = 0
  const start = performance.now()
  await new Promise<void>((resolve) => {
    const one = (due: number) => {
      i = (i + 7919) % API_RECORDS
      pool.request({ path: pathOf(i), method: 'GET', headers }).then(
        async (res) => {
          await res.body.dump()
          if (res.statusCode !== 200) errors++
          hist.recordValue(Math.max(1, Math.round((performance.now() - due) * 1000)))
          if (++done === total) resolve()
        },
        () => {
          errors++
          if (++done === total) resolve()
        },
      )
    }
    const pump = () => {
      const now = performance.now()
      const due = Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1)
      while (sent < due) one(start + (sent++ / rate) * 1000)
      if (sent < total) setImmediate(pump)
    }
    pump()
  })
  await pool.close()
  return { p50: hist.getValueAtPercentile(50) / 1000, p99: hist.getValueAtPercentile(99) / 1000, errors }
}

/** CPU seconds (user + system) a process has used, from /proc; undefined where there is no /proc. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

/** Saturation, then latency at the fixed rate, of one server (warmed up before the first round). */
async function httpFigures(s: Started): Promise<HttpFigures> {
  const cpu0 = cpuSeconds(s.child.pid!)
  const sat = await saturation(s, SECONDS)
  const cpu1 = cpuSeconds(s.child.pid!)
  const lat = await fixedRate(s, RATE, SECONDS)
  // Server CPU per request at saturation: steadier than req/s when other work shares the machine.
  const cpuUs =
    cpu0 === undefined || cpu1 === undefined ? Number.NaN : ((cpu1 - cpu0) * 1e6) / (sat.rps * SECONDS)
  return {
    saturation: sat.rps,
    cpuUs,
    tool: sat.tool,
    p50: lat.p50,
    p99: lat.p99,
    errors: sat.errors + lat.errors,
  }
}

/** Medians over the rounds; `each` lists a figure per round. */
function summary(rounds: HttpFigures[]): HttpFigures & { each: (f: (h: HttpFigures) => number) => number[] } {
  const m = (f: (h: HttpFigures) => number) => median(rounds.map(f))
  return {
    saturation: m((h) => h.saturation),
    cpuUs: m((h) => h.cpuUs),
    tool: rounds[0]!.tool,
    p50: m((h) => h.p50),
    p99: m((h) => h.p99),
    errors: rounds.reduce((n, h) => n + h.errors, 0),
    each: (f) => rounds.map(f),
  }
}

const COLLECTION = (name: string): Collection => ({
  name,
  key: 'customer_id',
  fields: [
    { name: 'first_name', type: 'string' },
    { name: 'segment', type: 'string' },
    { name: 'churn_score', type: 'number' },
  ],
})

function batchOf(from: number, n: number): PullWrite[] {
  const out = new Array<PullWrite>(n)
  for (let i = 0; i < n; i++) {
    const k = from + i
    out[i] = {
      key: `c${String(k).padStart(7, '0')}`,
      set: { first_name: 'Ada', segment: k % 3 === 0 ? 'gold' : 'silver', churn_score: (k % 100) / 100 },
      writer: 'load:bench',
    }
  }
  return out
}

interface Backend {
  name: string
  open(): Promise<{ store: PullStore; cleanup(collections: string[]): Promise<void> }>
}

function backends(): Backend[] {
  const list: Backend[] = [
    {
      name: 'embedded (SQLite)',
      async open() {
        const dir = mkdtempSync(join(tmpdir(), 'riffle-bench-pull-'))
        const store = await openPullStore('sqlite:', dir)
        return {
          store,
          cleanup: async () => {
            await store.close()
            rmSync(dir, { recursive: true, force: true })
          },
        }
      },
    },
  ]
  const redisUrl = process.env.RIFFLE_REDIS_URL
  if (redisUrl) {
    list.push({
      name: 'Redis',
      async open() {
        const store = await openPullStore(redisUrl, tmpdir())
        return {
          store,
          cleanup: async (collections) => {
            const r = new Redis(redisUrl)
            for (const c of collections) {
              let cursor = '0'
              do {
                const [next, keys] = await r.scan(cursor, 'MATCH', `${RECORD_PREFIX}${c}:*`, 'COUNT', 5000)
                cursor = next
                if (keys.length) await r.unlink(...keys)
              } while (cursor !== '0')
              await r.unlink(`${KEYS_PREFIX}${c}`)
            }
            r.disconnect()
            await store.close()
          },
        }
      },
    })
  }
  const mongoUrl = process.env.RIFFLE_MONGODB_URL
  if (mongoUrl) {
    list.push({
      name: 'MongoDB wire (FerretDB here)',
      async open() {
        const u = new URL(mongoUrl)
        u.pathname = `/riffle_bench_${randomUUID().replace(/-/g, '').slice(0, 10)}`
        const store = await openPullStore(u.toString(), tmpdir())
        return {
          store,
          cleanup: async () => {
            await (store as MongoPullStore).dropDatabase()
            await store.close()
          },
        }
      },
    })
  }
  return list
}

async function load(store: PullStore, collection: string, total: number, capSeconds: number) {
  const started = performance.now()
  let done = 0
  while (done < total && performance.now() - started < capSeconds * 1000) {
    const n = Math.min(BATCH, total - done)
    await store.write(collection, batchOf(done, n))
    done += n
  }
  return { done, seconds: (performance.now() - started) / 1000 }
}

async function getManyFigures(store: PullStore, collection: string, loaded: number) {
  const times: number[] = []
  const started = performance.now()
  // Enough runs for a stable median, bounded in time for slow servers.
  while (times.length < 200 && (times.length < 5 || performance.now() - started < 10_000)) {
    const keys = Array.from(
      { length: 500 },
      () => `c${String(Math.floor(Math.random() * loaded)).padStart(7, '0')}`,
    )
    const t = performance.now()
    const rs = await store.getMany(collection, keys)
    times.push(performance.now() - t)
    if (rs.some((r) => r === undefined)) throw new Error('getMany missed a loaded key')
  }
  return { median: median(times), runs: times.length }
}

async function main() {
  const lines: string[] = []
  const out = (s: string) => {
    lines.push(s)
    say(s)
  }
  out(`# bench:pull — ${new Date().toISOString()}, Node ${process.version}`)

  // 1. HTTP
  say('HTTP: starting the servers…')
  const dir = mkdtempSync(join(tmpdir(), 'riffle-bench-api-'))
  const ceilingServer = await startServer('ceiling', dir)
  const riffleServer = await startServer('riffle', dir)
  await fixedRate(ceilingServer, RATE, 2) // warm-up
  await fixedRate(riffleServer, RATE, 2)
  const ceilingRounds: HttpFigures[] = []
  const apiRounds: HttpFigures[] = []
  for (let r = 0; r < ROUNDS; r++) {
    say(`HTTP round ${r + 1} of ${ROUNDS}…`)
    ceilingRounds.push(await httpFigures(ceilingServer))
    apiRounds.push(await httpFigures(riffleServer))
  }
  await stop(ceilingServer)
  await stop(riffleServer)
  rmSync(dir, { recursive: true, force: true })
  const ceiling = summary(ceilingRounds)
  const api = summary(apiRounds)
  const ratio = median(apiRounds.map((a, i) => a.saturation / ceilingRounds[i]!.saturation))
  const k = (n: number) => `${Math.round(n / 1000)}k`
  const ms = (n: number) => n.toFixed(2)
  out('')
  out(
    `## Pull API, embedded store (${fmt(API_RECORDS)} records; saturation by ${api.tool}; latency open loop at ${fmt(RATE)} req/s offered; medians of ${ROUNDS} rounds of ${SECONDS} s, the two servers in turn)`,
  )
  out(
    '| server | req/s at saturation (each round) | server CPU µs/request | p50 ms | p99 ms (each round) | errors |',
  )
  out('|---|---:|---:|---:|---:|---:|')
  for (const [name, f] of [
    ['bare Fastify, constant (ceiling)', ceiling],
    ['GET /pull/v1/profile/{key}', api],
  ] as const) {
    const sats = f.each((h) => h.saturation).map(k)
    const p99s = f.each((h) => h.p99).map(ms)
    out(
      `| ${name} | ${fmt(f.saturation)} (${sats.join(', ')}) | ${f.cpuUs.toFixed(1)} | ${f.p50.toFixed(3)} | ${f.p99.toFixed(3)} (${p99s.join(', ')}) | ${f.errors} |`,
    )
  }
  const ratios = apiRounds.map(
    (a, i) => `${((a.saturation / ceilingRounds[i]!.saturation) * 100).toFixed(0)}%`,
  )
  out(
    `ratio to ceiling: ${(ratio * 100).toFixed(0)}% of its req/s (median of the rounds' ratios: ${ratios.join(', ')}), ${((ceiling.cpuUs / api.cpuUs) * 100).toFixed(0)}% by server CPU per request (aim ≥ 70%); p99 at ${fmt(RATE)} req/s: ${api.p99.toFixed(2)} ms (aim ≤ 2 ms)`,
  )

  // 2 and 3, per backend.
  out('')
  out(
    `## Per backend: getMany(500 keys) over ${fmt(GETMANY_RECORDS)} records; loading ${fmt(LOAD)} records in batches of ${fmt(BATCH)}`,
  )
  out('| backend | getMany(500) median ms (runs) | load records/s (loaded in s) |')
  out('|---|---:|---:|')
  for (const b of backends()) {
    say(`${b.name}…`)
    const { store, cleanup } = await b.open()
    const g = `bench-get-${randomUUID().slice(0, 8)}`
    const l = `bench-load-${randomUUID().slice(0, 8)}`
    try {
      await store.prepare([COLLECTION(g), COLLECTION(l)])
      const seeded = await load(store, g, GETMANY_RECORDS, 120)
      const gm = await getManyFigures(store, g, seeded.done)
      const ld = await load(store, l, LOAD, LOAD_SECONDS)
      const capped = ld.done < LOAD ? ` — capped: ${fmt(ld.done)} records in ${LOAD_SECONDS}s` : ''
      out(
        `| ${b.name} | ${gm.median.toFixed(2)} (${gm.runs}) | ${fmt(ld.done / ld.seconds)} (${ld.seconds.toFixed(1)} s${capped}) |`,
      )
    } finally {
      await cleanup([g, l])
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`)
}

await main()
