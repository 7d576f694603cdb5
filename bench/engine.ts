/**
 * bench:engine — the full real-time pipeline against two baselines, measured in one run on loopback.
 *
 *   npm run bench:engine            (servers from scripts/services.sh; RIFFLE_KAFKA_BROKERS)
 *   BENCH_EVENTS=100000 BENCH_RUNS=3 npm run bench:engine
 *   BENCH_ONLY=saturation|latency   one part only (latency needs BENCH_LATENCY_RATE)
 *   BENCH_LATENCY_RATE=10000 BENCH_LATENCY_SECONDS=15 BENCH_LATENCY_WARMUP_SECONDS=3
 *   BENCH_ENGINE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"   node flags for the engine processes
 *   BENCH_ENGINE_LOG=/tmp/engine.log BENCH_ENGINE_LOG_LEVEL=debug   the engine processes' logs
 *
 * Campaign: one filter, one enrichment, one CEL field, one Liquid field; outputs to Kafka, the
 * embedded (SQLite) pull store and the output history. Figures:
 *   - Riffle events/s at saturation (a pre-produced backlog; from the first commit to the last);
 *   - the ceiling: the same Kafka client consuming the same backlog and doing nothing else;
 *   - kafkajs: the same campaign written by hand the way a team would (eachMessage, one lookup,
 *     one upsert, one history insert and one produce per message);
 *   - p50/p99 latency from the event's time to its output being visible to a read_committed
 *     consumer, at 70% of Riffle's saturation rate; peak RSS of the engine process.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Admin, Consumer, Producer } from '@platformatic/kafka'
import hdr from 'hdr-histogram-js'
import { loadConfig } from '../src/config.js'
import { parseDefinitionsText } from '../src/definitions/source.js'
import { honourAbortedTransactions } from '../src/kafka/read-committed.js'
import { createLogger } from '../src/log.js'
import { openRiffle } from '../src/runtime.js'

const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000)
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const KAFKAJS_EVENTS = Number(process.env.BENCH_KAFKAJS_EVENTS ?? 20_000)
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 15)
// A fresh process runs its first batches before V8 has optimised them (~100 µs an event instead of
// ~30): the latency quantiles count the events after this warm-up; the whole run is reported too.
const WARMUP_SECONDS = Number(process.env.BENCH_LATENCY_WARMUP_SECONDS ?? 3)
const PROFILES = 10_000
const BROKERS = (process.env.RIFFLE_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')
const BIN = fileURLToPath(new URL('../bin/riffle.js', import.meta.url))
const BASELINE = fileURLToPath(new URL('./engine-kafkajs.ts', import.meta.url))

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const id = () => randomUUID().slice(0, 8)

const definitions = (topic: string, out: string) => `
streams:
  - name: purchases
    topic: ${topic}
    key: customer_id
    time: ts
    fields:
      - { name: customer_id, type: string, required: true }
      - { name: order_id, type: string, required: true }
      - { name: amount, type: number, required: true }
      - { name: ts, type: timestamp }
collections:
  - name: profile
    key: customer_id
    fields:
      - { name: first_name, type: string }
      - { name: segment, type: string }
      - { name: last_offer, type: string }
campaigns:
  - name: bench
    trigger: { stream: purchases }
    enrich: [ { collection: profile, key: event.customer_id, as: profile } ]
    where: event.amount >= 10.0
    content:
      offer_code: '"THX-" + event.order_id'
      message: { template: "Thanks {{ profile.first_name | default: 'friend' }}!" }
    outputs:
      - kafka: { topic: ${out}, key: event.customer_id }
      - pull: { collection: profile, key: event.customer_id, set: { last_offer: content.offer_code } }
`

function event(i: number, ts = Date.now()) {
  const customer = `c${i % (PROFILES * 2)}`
  return {
    key: Buffer.from(customer),
    value: Buffer.from(
      JSON.stringify({
        customer_id: customer,
        order_id: `o${i}`,
        amount: 5 + (i % 200),
        ts: new Date(ts).toISOString(),
      }),
    ),
  }
}

async function createTopics(...topics: string[]) {
  const admin = new Admin({ clientId: 'bench', bootstrapBrokers: BROKERS })
  await admin.createTopics({ topics, partitions: 4, replicas: 1 })
  await admin.close()
}

/** The bench's topics and consumer groups (`bench-…`, the kafkajs baseline's `baseline-…`) that were not there before it: deleted at the end. */
async function benchLeftovers(): Promise<{ topics: Set<string>; groups: Set<string> }> {
  const admin = new Admin({ clientId: 'bench', bootstrapBrokers: BROKERS })
  try {
    const topics = new Set((await admin.listTopics()).filter((t) => t.startsWith('bench-')))
    const groups = new Set(
      [...(await admin.listGroups()).keys()].filter(
        (g) => g.startsWith('bench-') || g.startsWith('baseline-'),
      ),
    )
    return { topics, groups }
  } finally {
    await admin.close()
  }
}

async function cleanUp(before: { topics: Set<string>; groups: Set<string> }): Promise<void> {
  const now = await benchLeftovers()
  const topics = [...now.topics].filter((t) => !before.topics.has(t))
  const groups = [...now.groups].filter((g) => !before.groups.has(g))
  const admin = new Admin({ clientId: 'bench', bootstrapBrokers: BROKERS })
  try {
    if (groups.length) await admin.deleteGroups({ groups }).catch(() => {})
    if (topics.length) await admin.deleteTopics({ topics })
    process.stderr.write(`deleted the bench's ${topics.length} topics and ${groups.length} consumer groups\n`)
  } catch (e) {
    process.stderr.write(`could not delete the bench's topics (${topics.join(', ')}): ${String(e)}\n`)
  } finally {
    await admin.close()
  }
}

async function produceBacklog(topic: string, n: number) {
  const p = new Producer({ clientId: 'bench', bootstrapBrokers: BROKERS, acks: 1, autocreateTopics: true })
  for (let i = 0; i < n; i += 1000) {
    await p.send({
      messages: Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ topic, ...event(i + j) })),
    })
  }
  await p.close()
}

/** The ceiling: the same client consuming the backlog, doing nothing else. */
async function consumeOnly(topic: string, n: number): Promise<number> {
  const c = new Consumer({
    clientId: 'bench-ceiling',
    groupId: `bench-ceiling-${id()}`,
    bootstrapBrokers: BROKERS,
    maxWaitTime: 100,
  })
  const stream = await c.consume({
    topics: [topic],
    mode: 'earliest',
    autocommit: false,
    maxWaitTime: 100,
    maxBytes: 16 * 1024 * 1024,
  })
  let seen = 0
  let start = 0
  const elapsed = await new Promise<number>((resolve) => {
    stream.on('data', () => {
      if (seen++ === 0) start = performance.now()
      if (seen === n) resolve(performance.now() - start)
    })
  })
  await stream.close()
  await c.close()
  return (n / elapsed) * 1000
}

interface EngineProc {
  child: ChildProcess
  url: Promise<string>
  /** CPU seconds (user + system) the engine process has used so far. */
  cpuSeconds(): number
  stop(): Promise<{ peakRssMb: number }>
}

function startEngine(env: Record<string, string>): EngineProc {
  const args = (process.env.BENCH_ENGINE_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const child = spawn(process.execPath, [...args, BIN, 'start', '--port', '0'], {
    env: { ...process.env, RIFFLE_LOG_LEVEL: process.env.BENCH_ENGINE_LOG_LEVEL ?? 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let log = ''
  const url = new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the engine did not start:\n${log}`)), 60_000)
    child.stdout!.on('data', (d) => {
      log += d
      const m = /riffle listening on (http:\/\/[^ ]+) /.exec(log)
      if (m) {
        clearTimeout(t)
        resolve(m[1]!)
      }
    })
    child.stderr!.on('data', (d) => (log += d))
    if (process.env.BENCH_ENGINE_LOG) {
      const file = process.env.BENCH_ENGINE_LOG
      child.stdout!.on('data', (d) => appendFileSync(file, d))
    }
  })
  return {
    child,
    url,
    cpuSeconds: () => {
      // /proc/PID/stat: utime and stime are fields 14 and 15, in clock ticks (100 per second)
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8')
        .replace(/^.*\) /, '')
        .split(' ')
      return (Number(fields[11]) + Number(fields[12])) / 100
    },
    stop: async () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
      const peakRssMb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024
      const done = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await done
      return { peakRssMb }
    },
  }
}

async function committedCount(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return Number(/^riffle_event_to_output_seconds_count\{stream="purchases"\} (\d+)/m.exec(text)?.[1] ?? 0)
}

async function prepare(dataDir: string, topic: string, out: string) {
  const config = loadConfig({ RIFFLE_DATA_DIR: dataDir })
  const riffle = await openRiffle(config, createLogger('silent'))
  await riffle.defs.apply(parseDefinitionsText(definitions(topic, out)), { actor: 'bench' })
  await riffle.pull.prepare((await riffle.defs.snapshot()).definitions.collections)
  for (let i = 0; i < PROFILES; i += 1000) {
    await riffle.pull.write(
      'profile',
      Array.from({ length: 1000 }, (_, j) => ({
        key: `c${i + j}`,
        set: { first_name: `N${i + j}`, segment: 'gold' },
        writer: 'bench',
      })),
    )
  }
  await riffle.close()
}

/** Riffle at saturation: the whole backlog, from the first commit to the last. */
async function riffleSaturation(
  topic: string,
  n: number,
): Promise<{ rate: number; peakRssMb: number; cpuMsPer1k: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-engine-'))
  const out = `bench-out-${id()}`
  await prepare(dataDir, topic, out)
  const engine = startEngine({
    RIFFLE_DATA_DIR: dataDir,
    RIFFLE_KAFKA_BROKERS: BROKERS.join(','),
    RIFFLE_ENGINE_GROUP: `bench-${id()}`,
    RIFFLE_ENGINE_ID: `bench-${id()}`,
  })
  const url = await engine.url
  let first = 0
  let firstCount = 0
  let firstCpu = 0
  let count = 0
  const deadline = Date.now() + 600_000
  while (count < n && Date.now() < deadline) {
    count = await committedCount(url).catch(() => 0)
    if (count > 0 && first === 0) {
      first = performance.now()
      firstCount = count
      firstCpu = engine.cpuSeconds()
    }
    await sleep(20)
  }
  const elapsed = performance.now() - first
  const cpuMsPer1k = ((engine.cpuSeconds() - firstCpu) * 1e6) / (count - firstCount)
  const { peakRssMb } = await engine.stop()
  rmSync(dataDir, { recursive: true, force: true })
  if (count < n) throw new Error(`riffle processed ${count} of ${n} events in time`)
  return { rate: (n / elapsed) * 1000, peakRssMb, cpuMsPer1k }
}

/** Latency from the event's time to its output being readable (read_committed), at a fixed offered rate. */
async function riffleLatency(rate: number) {
  const topic = `bench-lat-${id()}`
  const out = `bench-lat-out-${id()}`
  await createTopics(topic, out)
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-engine-'))
  await prepare(dataDir, topic, out)
  const engine = startEngine({
    RIFFLE_DATA_DIR: dataDir,
    RIFFLE_KAFKA_BROKERS: BROKERS.join(','),
    RIFFLE_ENGINE_GROUP: `bench-${id()}`,
    RIFFLE_ENGINE_ID: `bench-${id()}`,
  })
  const url = await engine.url
  while (
    !(await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    ))
  )
    await sleep(100)

  const histogramOptions = {
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000,
    numberOfSignificantValueDigits: 3 as const,
  }
  const histogram = hdr.build(histogramOptions)
  const withWarmup = hdr.build(histogramOptions)
  let steadyFrom = Number.POSITIVE_INFINITY
  const reader = honourAbortedTransactions(
    new Consumer({
      clientId: 'bench-reader',
      groupId: `bench-reader-${id()}`,
      bootstrapBrokers: BROKERS,
      isolationLevel: 1,
      maxWaitTime: 5,
    }),
  )
  const stream = await reader.consume({
    topics: [out],
    mode: 'earliest',
    autocommit: false,
    isolationLevel: 1,
    maxWaitTime: 5,
    minBytes: 1,
  })
  let received = 0
  stream.on('data', (m) => {
    const record = JSON.parse(m.value!.toString()) as { eventTime: string }
    const eventTime = Date.parse(record.eventTime)
    const ms = Math.max(1, Date.now() - eventTime)
    withWarmup.recordValue(ms)
    if (eventTime >= steadyFrom) histogram.recordValue(ms)
    received++
  })
  await sleep(1000)

  // Open loop: a fixed schedule of small batches, whatever the engine does.
  const producer = new Producer({ clientId: 'bench-open-loop', bootstrapBrokers: BROKERS, acks: 1 })
  const tickMs = 10
  const perTick = rate / (1000 / tickMs)
  let due = 0
  let sent = 0
  const start = performance.now()
  let i = 0
  steadyFrom = Date.now() + WARMUP_SECONDS * 1000
  // the engine's CPU over the steady part: what an event costs at this rate (smaller batches than at saturation)
  let steadyCpu: { cpu: number; sent: number } | undefined
  for (let tick = 1; performance.now() - start < (WARMUP_SECONDS + LATENCY_SECONDS) * 1000; tick++) {
    if (!steadyCpu && Date.now() >= steadyFrom) steadyCpu = { cpu: engine.cpuSeconds(), sent }
    due += perTick
    const k = Math.floor(due) - sent
    if (k > 0) {
      const now = Date.now()
      producer
        .send({ messages: Array.from({ length: k }, () => ({ topic, ...event(i++, now) })) })
        .catch(() => {})
      sent += k
    }
    await sleep(Math.max(0, start + tick * tickMs - performance.now()))
  }
  const cpuMsPer1k = steadyCpu
    ? ((engine.cpuSeconds() - steadyCpu.cpu) * 1e6) / Math.max(1, sent - steadyCpu.sent)
    : Number.NaN
  const expected = Math.floor(sent * (195 / 200)) // amount >= 10: 195 of every 200
  const deadline = Date.now() + 30_000
  while (received < expected && Date.now() < deadline) await sleep(50)
  await producer.close()
  await stream.close()
  await reader.close()
  const internal = engineQuantiles(await (await fetch(`${url}/metrics`)).text())
  const { peakRssMb } = await engine.stop()
  rmSync(dataDir, { recursive: true, force: true })
  return {
    p50: histogram.getValueAtPercentile(50),
    p99: histogram.getValueAtPercentile(99),
    max: histogram.maxValue,
    p99WithWarmup: withWarmup.getValueAtPercentile(99),
    maxWithWarmup: withWarmup.maxValue,
    n: received,
    cpuMsPer1k,
    peakRssMb,
    internal,
  }
}

/** p50/p99 from the engine's own histogram (event timestamp → committed), bucket upper bounds. */
function engineQuantiles(metrics: string): { p50Ms: number; p99Ms: number } {
  const buckets = [
    ...metrics.matchAll(/^riffle_event_to_output_seconds_bucket\{le="([^"]+)",stream="purchases"\} (\d+)/gm),
  ].map((m) => ({
    le: m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]),
    n: Number(m[2]),
  }))
  const total = buckets.at(-1)?.n ?? 0
  const at = (q: number) => (buckets.find((b) => b.n >= q * total)?.le ?? Number.NaN) * 1000
  return { p50Ms: at(0.5), p99Ms: at(0.99) }
}

async function kafkajsBaseline(topic: string, n: number): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-kafkajs-'))
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', BASELINE, topic, String(n), dataDir, BROKERS.join(',')],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  await new Promise((r) => child.once('exit', r))
  rmSync(dataDir, { recursive: true, force: true })
  const rate = Number(/rate=(\d+(\.\d+)?)/.exec(out)?.[1])
  if (!Number.isFinite(rate)) throw new Error(`kafkajs baseline failed: ${out}`)
  return rate
}

async function main() {
  const started = Date.now()
  const before = await benchLeftovers()
  const backlog = `bench-in-${id()}`
  if (process.env.BENCH_ONLY !== 'latency') {
    await createTopics(backlog)
    process.stderr.write(`producing ${EVENTS} events to ${backlog}…\n`)
    await produceBacklog(backlog, EVENTS)
  }

  const only = process.env.BENCH_ONLY
  const ceiling: number[] = []
  const riffle: number[] = []
  const rss: number[] = []
  const cpu: number[] = []
  for (let r = 0; r < (only === 'latency' ? 0 : RUNS); r++) {
    ceiling.push(await consumeOnly(backlog, EVENTS))
    const s = await riffleSaturation(backlog, EVENTS)
    riffle.push(s.rate)
    rss.push(s.peakRssMb)
    cpu.push(s.cpuMsPer1k)
    process.stderr.write(
      `run ${r + 1}: ceiling ${ceiling.at(-1)!.toFixed(0)}/s, riffle ${s.rate.toFixed(0)}/s (${s.cpuMsPer1k.toFixed(1)} CPU-ms per 1,000 events), peak RSS ${s.peakRssMb.toFixed(0)} MB\n`,
    )
  }
  if (only === 'saturation') {
    await cleanUp(before)
    process.exit(0)
  }
  let kafkajs = Number.NaN
  if (only !== 'latency') {
    const kjTopic = `bench-kj-${id()}`
    await createTopics(kjTopic)
    await produceBacklog(kjTopic, KAFKAJS_EVENTS)
    kafkajs = await kafkajsBaseline(kjTopic, KAFKAJS_EVENTS)
    process.stderr.write(`kafkajs baseline: ${kafkajs.toFixed(0)}/s\n`)
  }

  const rate = Number(process.env.BENCH_LATENCY_RATE ?? Math.round(median(riffle) * 0.7))
  process.stderr.write(`latency at ${rate} events/s for ${WARMUP_SECONDS} + ${LATENCY_SECONDS} s…\n`)
  const lat = await riffleLatency(rate)

  const result = {
    date: new Date().toISOString(),
    node: process.version,
    events: EVENTS,
    runs: RUNS,
    ceilingEventsPerSec: Math.round(median(ceiling)),
    riffleEventsPerSec: Math.round(median(riffle)),
    riffleVsCeiling: +(median(riffle) / median(ceiling)).toFixed(3),
    riffleCpuMsPer1kEvents: +median(cpu).toFixed(1),
    kafkajsEventsPerSec: Math.round(kafkajs),
    riffleVsKafkajs: +(median(riffle) / kafkajs).toFixed(2),
    latencyOfferedPerSec: rate,
    latencyP50Ms: lat.p50,
    latencyP99Ms: lat.p99,
    latencyMaxMs: lat.max,
    latencyWarmupSeconds: WARMUP_SECONDS,
    latencyP99MsWithWarmup: lat.p99WithWarmup,
    latencyMaxMsWithWarmup: lat.maxWithWarmup,
    latencySamples: lat.n,
    latencyCpuMsPer1kEvents: +lat.cpuMsPer1k.toFixed(1),
    engineLatencyP50MsAtMost: lat.internal.p50Ms,
    engineLatencyP99MsAtMost: lat.internal.p99Ms,
    peakRssMb: Math.round(Math.max(...rss, lat.peakRssMb)),
    seconds: Math.round((Date.now() - started) / 1000),
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  process.stdout.write(
    [
      '',
      '| figure | median |',
      '|---|---|',
      `| consume-only ceiling (@platformatic/kafka) | ${result.ceilingEventsPerSec} events/s |`,
      `| Riffle, full pipeline | ${result.riffleEventsPerSec} events/s (${(result.riffleVsCeiling * 100).toFixed(0)}% of the ceiling), ${result.riffleCpuMsPer1kEvents} CPU-ms per 1,000 events |`,
      `| kafkajs, hand-written | ${result.kafkajsEventsPerSec} events/s (Riffle ${result.riffleVsKafkajs}×) |`,
      `| latency at ${rate}/s (${process.env.BENCH_LATENCY_RATE ? 'BENCH_LATENCY_RATE' : '70%'}), after ${WARMUP_SECONDS} s of warm-up | p50 ${lat.p50} ms, p99 ${lat.p99} ms (with the warm-up: p99 ${lat.p99WithWarmup} ms, max ${lat.maxWithWarmup} ms); engine ${result.latencyCpuMsPer1kEvents} CPU-ms per 1,000 events |`,
      `| engine peak RSS | ${result.peakRssMb} MB |`,
      '',
    ].join('\n'),
  )
  if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(result, null, 2))
  await cleanUp(before)
  process.exit(0)
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`)
  process.exit(1)
})
