/**
 * Peeks at the newest messages of a topic without committing any offset: a throwaway consumer
 * reads from (end - limit) on each partition and leaves. Used by the stream sample and inference.
 */
import { randomUUID } from 'node:crypto'
import { Admin, Consumer } from '@platformatic/kafka'
import { riffleError } from '../errors.js'
import { honourAbortedTransactions } from './read-committed.js'

export interface SampledMessage {
  partition: number
  offset: string
  timestamp: string
  key: string | null
  /** The value as text (UTF-8), or null for an empty value. */
  value: string | null
  /** The value parsed as JSON, when it is JSON. */
  json?: unknown
}

export interface SampleOptions {
  brokers: string[]
  topic: string
  limit: number
  /** Gives up waiting for messages after this long. */
  timeoutMs?: number
  /** The throwaway consumer group's id (default `riffle-sample-<uuid>`); it is deleted afterwards. */
  groupId?: string
}

export async function sampleTopic(opts: SampleOptions): Promise<SampledMessage[]> {
  const timeoutMs = opts.timeoutMs ?? 5_000
  const groupId = opts.groupId ?? `riffle-sample-${randomUUID()}`
  const consumer = honourAbortedTransactions(
    new Consumer({
      clientId: 'riffle-sample',
      groupId,
      bootstrapBrokers: opts.brokers,
      timeout: Math.min(timeoutMs, 5_000),
      retries: 1,
      autocreateTopics: false,
    }),
  )
  try {
    let latest: Map<string, bigint[]>
    let earliest: Map<string, bigint[]>
    try {
      latest = await consumer.listOffsets({ topics: [opts.topic] })
      earliest = await consumer.listOffsets({ topics: [opts.topic], timestamp: -2n })
    } catch (e) {
      throw classify(e, opts)
    }
    const ends = latest.get(opts.topic) ?? []
    const starts = earliest.get(opts.topic) ?? []
    const perPartition = BigInt(Math.max(1, opts.limit))
    const offsets = ends.map((end, partition) => {
      const start = starts[partition] ?? 0n
      const from = end - perPartition > start ? end - perPartition : start
      return { topic: opts.topic, partition, offset: from }
    })
    const remaining = new Map<number, bigint>()
    offsets.forEach((o, p) => {
      if (ends[p]! > o.offset) remaining.set(p, ends[p]!)
    })
    if (remaining.size === 0) return []

    const stream = await consumer.consume({
      topics: [opts.topic],
      mode: 'manual',
      offsets,
      autocommit: false,
      maxWaitTime: 200,
    })
    const out: SampledMessage[] = []
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      stream.on('data', (m) => {
        const end = remaining.get(m.partition)
        if (end === undefined) return
        out.push(toSample(m.partition, m.offset, m.timestamp, m.key, m.value))
        if (m.offset + 1n >= end) remaining.delete(m.partition)
        if (remaining.size === 0) {
          clearTimeout(timer)
          resolve()
        }
      })
      stream.on('error', () => {
        clearTimeout(timer)
        resolve()
      })
    })
    await done
    await stream.close().catch(() => {})
    out.sort((a, b) =>
      a.timestamp !== b.timestamp
        ? a.timestamp < b.timestamp
          ? 1
          : -1
        : a.partition - b.partition || Number(BigInt(b.offset) - BigInt(a.offset)),
    )
    return out.slice(0, opts.limit)
  } finally {
    await dispose(consumer, groupId, opts.brokers)
  }
}

/**
 * Closes a throwaway consumer and deletes its (empty, offset-less) group, so that samples and
 * traces leave no `riffle-sample-…` groups behind in the cluster's listings (the broker would drop
 * them only at its next offsets-retention check, every 10 minutes by default). Best effort.
 */
async function dispose(consumer: Consumer, groupId: string, brokers: string[]): Promise<void> {
  await consumer.close().catch(() => {})
  const admin = new Admin({
    clientId: 'riffle-sample',
    bootstrapBrokers: brokers,
    timeout: 2_000,
    retries: 0,
  })
  await admin.deleteGroups({ groups: [groupId] }).catch(() => {})
  await admin.close().catch(() => {})
}

function toSample(
  partition: number,
  offset: bigint,
  timestamp: bigint,
  key: unknown,
  value: unknown,
): SampledMessage {
  const keyText = Buffer.isBuffer(key) && key.length > 0 ? key.toString('utf8') : null
  const text = Buffer.isBuffer(value) && value.length > 0 ? value.toString('utf8') : null
  const sample: SampledMessage = {
    partition,
    offset: offset.toString(),
    timestamp: new Date(Number(timestamp)).toISOString(),
    key: keyText,
    value: text,
  }
  if (text !== null) {
    try {
      sample.json = JSON.parse(text)
    } catch {
      // not JSON: the sample shows the text; inference skips it
    }
  }
  return sample
}

function classify(e: unknown, opts: SampleOptions): Error {
  const text = collectMessages(e)
  if (/UNKNOWN_TOPIC|unknown topic|does not host this topic/i.test(text)) {
    return riffleError(
      'RIFFLE_NOT_FOUND',
      `topic "${opts.topic}" does not exist on ${opts.brokers.join(',')}`,
      { cause: e },
    )
  }
  return riffleError(
    'RIFFLE_KAFKA_UNAVAILABLE',
    `cannot read topic "${opts.topic}" from ${opts.brokers.join(',')}: ${text}`,
    {
      cause: e,
    },
  )
}

function collectMessages(e: unknown, depth = 0): string {
  if (!(e instanceof Error) || depth > 4) return String(e)
  const inner = (e as Error & { errors?: unknown[] }).errors
  const parts = [e.message, ...(Array.isArray(inner) ? inner.map((x) => collectMessages(x, depth + 1)) : [])]
  if (e.cause) parts.push(collectMessages(e.cause, depth + 1))
  return parts.join('; ')
}

/** Reads the one message at (topic, partition, offset), committing nothing; undefined when there is none. */
export async function fetchMessage(opts: {
  brokers: string[]
  topic: string
  partition: number
  offset: bigint
  timeoutMs?: number
}): Promise<{ key: Buffer | null; value: Buffer | null; timestamp: bigint } | undefined> {
  const groupId = `riffle-trace-${randomUUID()}`
  const consumer = honourAbortedTransactions(
    new Consumer({
      clientId: 'riffle-trace',
      groupId,
      bootstrapBrokers: opts.brokers,
      timeout: 5_000,
      retries: 1,
      autocreateTopics: false,
    }),
  )
  try {
    let ends: bigint[]
    try {
      ends = (await consumer.listOffsets({ topics: [opts.topic] })).get(opts.topic) ?? []
    } catch (e) {
      throw classify(e, { brokers: opts.brokers, topic: opts.topic, limit: 1 })
    }
    if (opts.partition >= ends.length) {
      throw riffleError(
        'RIFFLE_NOT_FOUND',
        `topic "${opts.topic}" has no partition ${opts.partition} (it has ${ends.length})`,
      )
    }
    if (opts.offset >= ends[opts.partition]!) return undefined
    const stream = await consumer.consume({
      topics: [opts.topic],
      mode: 'manual',
      offsets: [{ topic: opts.topic, partition: opts.partition, offset: opts.offset }],
      autocommit: false,
      maxWaitTime: 200,
    })
    const found = await new Promise<
      { key: Buffer | null; value: Buffer | null; timestamp: bigint } | undefined
    >((resolve) => {
      const timer = setTimeout(() => resolve(undefined), opts.timeoutMs ?? 5_000)
      stream.on('data', (m) => {
        if (m.partition !== opts.partition || m.offset < opts.offset) return
        clearTimeout(timer)
        resolve(
          m.offset === opts.offset
            ? { key: m.key ?? null, value: m.value ?? null, timestamp: m.timestamp }
            : undefined,
        )
      })
    })
    await stream.close().catch(() => {})
    return found
  } finally {
    await dispose(consumer, groupId, opts.brokers)
  }
}
