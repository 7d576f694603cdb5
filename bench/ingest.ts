/**
 * `npm run bench:ingest`: HTTP ingest (`POST /ingest/v1/{stream}`) against a hand-written
 * Fastify-to-Kafka route (bench/ingest-baseline.ts), each in its own process, on loopback:
 * accepted requests/s at saturation (autocannon, 32 connections, unique customer keys), p50/p99,
 * and a count of what reached the topic: at least every request answered 202, at most 32 more
 * (the requests still in flight when the run stopped, whose answers autocannon does not count).
 *
 *   RIFFLE_BENCH_SECONDS   seconds per run (default 5)
 *   RIFFLE_BENCH_ROUNDS    rounds, baseline and Riffle in turn; medians are reported (default 3)
 *   RIFFLE_KAFKA_BROKERS   the broker (default 127.0.0.1:9092)
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Admin, Consumer } from '@platformatic/kafka'
import autocannon from 'autocannon'
import { loadConfig } from '../src/config.js'
import { parseDefinitionsText } from '../src/definitions/source.js'
import { createLogger } from '../src/log.js'
import { openRiffle } from '../src/runtime.js'

const SECONDS = Number(process.env.RIFFLE_BENCH_SECONDS ?? 5)
const ROUNDS = Math.max(1, Number(process.env.RIFFLE_BENCH_ROUNDS ?? 3))
const BROKERS = process.env.RIFFLE_KAFKA_BROKERS ?? '127.0.0.1:9092'
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const id = () => Math.random().toString(36).slice(2, 10)

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return port
}

async function createTopic(topic: string) {
  const admin = new Admin({ clientId: 'bench-ingest', bootstrapBrokers: BROKERS.split(',') })
  await admin.createTopics({ topics: [topic], partitions: 4, replicas: 1 })
  await admin.close()
}

async function messagesIn(topic: string): Promise<number> {
  const c = new Consumer({
    clientId: 'bench-ingest',
    groupId: `bench-ingest-${id()}`,
    bootstrapBrokers: BROKERS.split(','),
  })
  const ends = (await c.listOffsets({ topics: [topic] })).get(topic) ?? []
  await c.close()
  return ends.reduce((n, o) => n + Number(o), 0)
}

async function waitReady(url: string, child: ChildProcess) {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode})`)
    const ok = await fetch(url).then(
      (r) => r.status < 500,
      () => false,
    )
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} never answered`)
}

interface Run {
  rps: number
  p50: number
  p99: number
  answered202: number
  inTopic: number
  other: number
}

async function load(url: string, headers: Record<string, string>, topic: string): Promise<Run> {
  const before = await messagesIn(topic)
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    autocannon(
      {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ customer_id: 'c[<id>]', amount: 42.5, order_id: 'o[<id>]' }),
        idReplacement: true,
        connections: 32,
        duration: SECONDS,
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    )
  })
  const answered202 = r['2xx']
  await new Promise((res) => setTimeout(res, 500))
  return {
    rps: answered202 / SECONDS,
    p50: r.latency.p50,
    p99: r.latency.p99,
    answered202,
    inTopic: (await messagesIn(topic)) - before,
    other: r.non2xx + r.errors,
  }
}

/** Every 202 in the topic, plus at most the requests in flight when the run stopped. */
function accountedFor(r: Run): boolean {
  return r.inTopic >= r.answered202 && r.inTopic <= r.answered202 + 32
}

async function baseline(topic: string): Promise<Run> {
  const port = await freePort()
  const script = fileURLToPath(new URL('./ingest-baseline.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', script, String(port), BROKERS, topic], {
    stdio: 'ignore',
  })
  try {
    await waitReady(`http://127.0.0.1:${port}/`, child)
    return await load(`http://127.0.0.1:${port}/ingest`, {}, topic)
  } finally {
    child.kill()
  }
}

async function riffle(topic: string): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'riffle-bench-ingest-'))
  const env = {
    RIFFLE_DATA_DIR: dir,
    RIFFLE_KAFKA_BROKERS: BROKERS,
    RIFFLE_ENGINE: 'off',
    RIFFLE_SCHEDULER: 'off',
  }
  const setup = await openRiffle(loadConfig(env), createLogger('silent'))
  await setup.defs.apply(
    parseDefinitionsText(`
streams:
  - name: orders
    topic: ${topic}
    key: customer_id
    fields:
      - { name: customer_id, type: string, required: true }
      - { name: order_id, type: string, required: true }
      - { name: amount, type: number, required: true }
`),
    { actor: 'bench' },
  )
  const key = (await setup.keys.create(['ingest'])).key
  await setup.close()
  const port = await freePort()
  const bin = fileURLToPath(new URL('../bin/riffle.js', import.meta.url))
  const child = spawn(process.execPath, [bin, 'start', '--port', String(port)], {
    env: { ...process.env, ...env, RIFFLE_LOG_LEVEL: 'warn' },
    stdio: 'ignore',
  })
  try {
    await waitReady(`http://127.0.0.1:${port}/healthz`, child)
    return await load(`http://127.0.0.1:${port}/ingest/v1/orders`, { authorization: `Bearer ${key}` }, topic)
  } finally {
    child.kill()
    await new Promise((r) => child.once('exit', r))
    rmSync(dir, { recursive: true, force: true })
  }
}

process.stdout.write(`bench:ingest — ${SECONDS} s per run, 32 connections, ${ROUNDS} round(s)\n`)
const base: Run[] = []
const ours: Run[] = []
for (let round = 1; round <= ROUNDS; round++) {
  const t1 = `bench-ingest-base-${id()}`
  const t2 = `bench-ingest-riffle-${id()}`
  await createTopic(t1)
  await createTopic(t2)
  const b = await baseline(t1)
  const r = await riffle(t2)
  base.push(b)
  ours.push(r)
  for (const [label, x] of [
    ['baseline', b],
    ['riffle', r],
  ] as const)
    process.stdout.write(
      `round ${round} ${label}: ${Math.round(x.rps)} req/s, p50 ${x.p50} ms, p99 ${x.p99} ms; 202: ${x.answered202}, in the topic: ${x.inTopic}, other answers: ${x.other}\n`,
    )
  if (!accountedFor(r))
    throw new Error(`Riffle answered 202 ${r.answered202} times, but ${r.inTopic} events reached the topic`)
}
const ratios = ours.map((r, i) => r.rps / base[i]!.rps)
process.stdout.write(`
| figure | median |
|---|---|
| hand-written Fastify → Kafka route (baseline) | ${Math.round(median(base.map((x) => x.rps)))} req/s, p99 ${median(base.map((x) => x.p99))} ms |
| Riffle \`POST /ingest/v1/{stream}\` (validated, idempotent, acks all) | ${Math.round(median(ours.map((x) => x.rps)))} req/s, p99 ${median(ours.map((x) => x.p99))} ms (${(100 * median(ratios)).toFixed(0)}% of the baseline) |
| every request answered 202 is in the topic | ${ours.every(accountedFor) ? 'yes, every round' : 'NO'} |
`)
