/**
 * The real-time engine: one consumer group over every stream with an active campaign.
 *
 * Each batch: decode and validate (bad messages go to the dead-letter topic) → activate the
 * campaigns (pull store and webhooks, then the output history) → one Kafka transaction with the
 * output records, the dead letters and the consumed offsets. Offsets are committed only with that
 * transaction, once everything else is durable, so a crash replays at most the open batch, and
 * every replayed write is idempotent on the activation id.
 */

import { setImmediate as yieldToIo } from 'node:timers/promises'
import { Consumer, FetchIsolationLevels, type Message, Producer } from '@platformatic/kafka'
import type { DefinitionsService } from '../definitions/service.js'
import { mirrorMessages } from '../history/mirror.js'
import { PipelinedHistory } from '../history/pipeline.js'
import { javaCompatiblePartitioner } from '../kafka/partitioner.js'
import { honourAbortedTransactions } from '../kafka/read-committed.js'
import { partsOf } from '../kafka/request-size.js'
import { addOffsetsToTransaction } from '../kafka/txn-offsets.js'
import { within } from '../kafka/within.js'
import type { Logger } from '../log.js'
import type { PullStore } from '../pull/store.js'
import {
  type ActivateDeps,
  activateBatch,
  type HistoryPort,
  RetryableOutputError,
  type TriggerItem,
} from './activate.js'
import type { DedupeStore } from './dedupe.js'
import type { EngineMetrics } from './metrics.js'
import { buildPlan, type CampaignRuntime, type EnginePlan } from './plan.js'
import type { WebhookSender } from './webhook.js'

export interface EngineOptions {
  brokers: string[]
  /** Consumer group (default `riffle`). Every engine process of one deployment uses the same. */
  groupId?: string
  /** Stable id of this engine process; the transactional id derives from it (default riffle-engine). */
  engineId?: string
  /** Most messages per batch (default 5000). */
  batchMax?: number
  /** How often to look for changed definitions (default 1000 ms). */
  reloadMs?: number
  /** Largest message accepted (default 1 MiB); larger ones are dead-lettered. */
  maxMessageBytes?: number
  /** Messages buffered before fetching pauses (default 20000). */
  bufferMax?: number
  /** Consumer group session timeout (default 10 s): how long a dead process holds its partitions. */
  sessionTimeoutMs?: number
  /** Mirror every activation to this topic, in the batch's transaction (exactly once). */
  historyTopic?: string | undefined
  /** How long one transaction step (begin, send, offsets, commit) may take before the engine gives up on it and retries (default 30000 ms). */
  kafkaStepTimeoutMs?: number
}

export interface EngineDeps {
  defs: DefinitionsService
  pull: PullStore
  history: HistoryPort
  dedupe: DedupeStore
  webhooks: WebhookSender
  log: Logger
  metrics: EngineMetrics
}

type Msg = Message<Buffer, Buffer, Buffer, Buffer>
type Stream = Awaited<ReturnType<Consumer<Buffer, Buffer, Buffer, Buffer>['consume']>>

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * The transactional producer's wait before a retry. A transaction that starts right after the
 * previous commit gets CONCURRENT_TRANSACTIONS for a few milliseconds while the coordinator writes
 * the markers; each batch meets it once, so it is retried after 2 ms, then 4, up to 10 (a fixed
 * 20 ms cost ~20 ms of latency per batch, measured at 2,000 events/s). Anything else (a broker
 * restarting, a leader moving) backs off from 20 ms by 20 ms a time up to 200 ms: 30 retries span
 * about 5 s, after which the batch fails and the engine's own retry (logged, with backoff) goes on.
 */
export function producerRetryDelay(
  _client: unknown,
  _operation: string,
  attempt: number,
  _retries: number,
  error: unknown,
): number {
  const e = error as { findBy?: (property: string, value: unknown) => unknown }
  if (e?.findBy?.('apiId', 'CONCURRENT_TRANSACTIONS')) return Math.min(2 ** attempt, 10)
  return Math.min(20 * attempt, 200)
}

function flagged(e: unknown, prop: string): boolean {
  const f = (e as { findBy?: (p: string, v: unknown) => unknown } | undefined)?.findBy
  return typeof f === 'function' && Boolean(f.call(e, prop, true))
}

function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const inner = (e as Error & { errors?: unknown[] }).errors
  const parts = [e.message, ...(Array.isArray(inner) ? inner.slice(0, 3).map(errorText) : [])]
  return parts.join('; ').slice(0, 500)
}

export class Engine {
  readonly #deps: EngineDeps
  /** The history as activateBatch appends to it: on a worker thread, while the batch commits. */
  readonly #history: PipelinedHistory
  readonly #opts: Required<Omit<EngineOptions, 'historyTopic'>> & { historyTopic: string | undefined }
  readonly #log: Logger
  #consumer: Consumer<Buffer, Buffer, Buffer, Buffer> | undefined
  #producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined
  #stream: Stream | undefined
  #plan: EnginePlan | undefined
  #running = false
  #buffer: Msg[] = []
  #paused = false
  #wake: (() => void) | undefined
  #loop: Promise<void> | undefined
  #reloadTimer: NodeJS.Timeout | undefined
  /** Per partition, the next offset this process expects: messages before it were already processed. */
  readonly #expected = new Map<string, bigint>()
  #assigned = new Set<string>()
  #joined = false
  #lastError: string | undefined
  #processed = 0

  constructor(deps: EngineDeps, opts: EngineOptions) {
    this.#deps = deps
    this.#history = new PipelinedHistory(deps.history)
    this.#log = deps.log.child({ component: 'engine' })
    this.#opts = {
      groupId: 'riffle',
      engineId: 'riffle-engine',
      batchMax: 5000,
      reloadMs: 1000,
      maxMessageBytes: 1024 * 1024,
      bufferMax: 20_000,
      sessionTimeoutMs: 10_000,
      historyTopic: undefined,
      kafkaStepTimeoutMs: 30_000,
      ...opts,
    }
  }

  /** Whether the engine has joined its consumer group (or has nothing to consume). */
  get ready(): boolean {
    return this.#running && (this.#joined || (this.#plan !== undefined && this.#plan.topics.length === 0))
  }

  status() {
    return {
      running: this.#running,
      joined: this.#joined,
      topics: this.#plan?.topics ?? [],
      revision: this.#plan?.revision,
      assigned: [...this.#assigned].sort(),
      buffered: this.#buffer.length,
      processed: this.#processed,
      lastError: this.#lastError,
    }
  }

  /** The transactional producer; made anew after a failed transaction, which also aborts a dead process's one. */
  #getProducer(): Producer<Buffer, Buffer, Buffer, Buffer> {
    this.#producer ??= new Producer({
      clientId: `${this.#opts.engineId}-producer`,
      bootstrapBrokers: this.#opts.brokers,
      partitioner: javaCompatiblePartitioner,
      transactionalId: `riffle-tx-${this.#opts.engineId}`,
      idempotent: true,
      // @platformatic/kafka 1.x sends producer id 0 / epoch 0 in InitProducerId by default; after a
      // crash the broker then answers PRODUCER_FENCED for ever. -1/-1 asks for the current epoch
      // (and aborts the dead process's open transaction), as the Java client does.
      producerId: -1n,
      producerEpoch: -1,
      acks: -1,
      autocreateTopics: true,
      retries: 30,
      retryDelay: producerRetryDelay,
    })
    return this.#producer
  }

  async #initTransactions(): Promise<void> {
    try {
      // beginTransaction runs InitProducerId; nothing was added, so the transaction is only
      // cancelled locally (an EndTxn for an empty transaction is an error). With the broker away,
      // the client's InitProducerId never answers: 10 s at most, then a warning and a retry.
      const ms = Math.min(this.#opts.kafkaStepTimeoutMs, 10_000)
      const tx = await within(this.#getProducer().beginTransaction(), ms, 'InitProducerId')
      await within(tx.cancel(), ms, 'cancel')
    } catch (e) {
      await this.#dropProducer()
      throw e
    }
  }

  /**
   * Fences whatever transaction a previous process with this id left, before any committed offset
   * is read (a commit it had sent is then visible to the consumer); loads the definitions; then
   * consumes. Each step is retried, with a warning, until it succeeds or the engine stops: Kafka
   * or a store that is away at start-up delays the engine, and never ends it.
   */
  async #boot(): Promise<void> {
    if (
      !(await this.#untilDone('initialise the Kafka transactional producer', () => this.#initTransactions()))
    )
      return
    if (!(await this.#untilDone('load the definitions', () => this.#reload()))) return
    if (!this.#running) return
    this.#reloadTimer = setInterval(() => {
      this.#reload().catch((e) => this.#log.error({ err: e }, 'reloading definitions failed'))
    }, this.#opts.reloadMs)
    await this.#run()
  }

  async #untilDone(what: string, step: () => Promise<void>): Promise<boolean> {
    for (let attempt = 1, backoff = 500; this.#running; attempt++) {
      try {
        await step()
        if (attempt > 1) this.#log.info({ attempt }, `${what}: done`)
        return true
      } catch (e) {
        this.#lastError = errorText(e)
        this.#log.warn({ err: this.#lastError, attempt }, `could not ${what}; retrying`)
        await sleep(backoff)
        backoff = Math.min(backoff * 2, 5_000)
      }
    }
    return false
  }

  async #dropProducer(): Promise<void> {
    const p = this.#producer
    this.#producer = undefined
    if (!p) return
    await this.#step(new Promise<void>((resolve) => p.close(true, () => resolve())), 'producer close').catch(
      (e) => this.#log.warn({ err: errorText(e) }, 'the old producer did not close; going on without it'),
    )
  }

  #step<T>(p: Promise<T>, step: string): Promise<T> {
    return within(p, this.#opts.kafkaStepTimeoutMs, step)
  }

  async start(): Promise<void> {
    if (this.#running) return
    this.#running = true
    this.#consumer = honourAbortedTransactions(
      new Consumer<Buffer, Buffer, Buffer, Buffer>({
        clientId: `${this.#opts.engineId}-consumer`,
        groupId: this.#opts.groupId,
        bootstrapBrokers: this.#opts.brokers,
        sessionTimeout: this.#opts.sessionTimeoutMs,
        rebalanceTimeout: 20_000,
        heartbeatInterval: 1_000,
        isolationLevel: FetchIsolationLevels.READ_COMMITTED,
        maxWaitTime: 100,
        autocreateTopics: true,
      }),
    )
    this.#consumer.on('consumer:group:join', (p) => this.#onJoin(p.assignments ?? []))
    this.#consumer.on('consumer:lag', (lag) => {
      for (const [topic, partitions] of lag) {
        partitions.forEach((n, partition) => {
          this.#deps.metrics.lag.set({ topic, partition: String(partition) }, Number(n))
        })
      }
    })
    this.#loop = this.#boot()
  }

  async stop(): Promise<void> {
    if (!this.#running) return
    this.#running = false
    clearInterval(this.#reloadTimer)
    this.#wake?.()
    await this.#loop?.catch(() => {})
    await this.#pendingCommit
    await this.#closeStream()
    this.#consumer?.stopLagMonitoring()
    const consumer = this.#consumer
    if (consumer) await new Promise<void>((resolve) => consumer.close(true, () => resolve()))
    await this.#dropProducer()
  }

  /** Applies changed definitions at the next batch boundary; resubscribes when the topics change. */
  async #reload(): Promise<void> {
    const snapshot = await this.#deps.defs.snapshot()
    if (this.#plan && this.#plan.revision === snapshot.revision) return
    await this.#deps.pull.prepare(snapshot.definitions.collections)
    const plan = buildPlan(snapshot, { maxMessageBytes: this.#opts.maxMessageBytes })
    const before = this.#plan?.topics.join(',')
    this.#plan = plan
    this.#log.info({ revision: plan.revision, topics: plan.topics }, 'definitions loaded')
    if (before !== plan.topics.join(',')) this.#resubscribe = true
    this.#wake?.()
  }

  #resubscribe = true

  async #subscribe(): Promise<void> {
    this.#resubscribe = false
    await this.#closeStream()
    this.#buffer = []
    this.#expected.clear()
    this.#joined = false
    const topics = this.#plan?.topics ?? []
    if (topics.length === 0) return
    const stream = await this.#consumer!.consume({
      topics,
      mode: 'committed',
      fallbackMode: 'earliest',
      autocommit: false,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      maxWaitTime: 100,
      maxBytes: 16 * 1024 * 1024,
    })
    this.#stream = stream
    stream.on('data', (m: Msg) => {
      if (this.#stream !== stream) return
      this.#buffer.push(m)
      if (!this.#paused && this.#buffer.length >= this.#opts.bufferMax) {
        this.#paused = true
        stream.pause()
      }
      this.#wake?.()
    })
    stream.on('error', (e: unknown) => {
      this.#lastError = errorText(e)
      this.#log.error({ err: e }, 'consumer stream failed; resubscribing')
      this.#resubscribe = true
      this.#wake?.()
    })
    this.#consumer!.startLagMonitoring({ topics }, 5_000)
  }

  async #closeStream(): Promise<void> {
    const s = this.#stream
    this.#stream = undefined
    this.#paused = false
    if (s) await s.close().catch(() => {})
  }

  #onJoin(assignments: Array<{ topic: string; partitions: number[] }>): void {
    const now = new Set<string>()
    for (const a of assignments) for (const p of a.partitions) now.add(`${a.topic}:${p}`)
    for (const tp of this.#expected.keys())
      if (!now.has(tp) || !this.#assigned.has(tp)) this.#expected.delete(tp)
    // Everything buffered was fetched under the old generation: drop it. The stream re-fetches each
    // assigned partition from its committed offset (here, or at its new owner).
    const dropped = this.#buffer.filter((m) => now.has(`${m.topic}:${m.partition}`))
    this.#buffer = []
    const added = [...now].filter((tp) => !this.#assigned.has(tp))
    this.#assigned = now
    this.#mustRefetch(dropped)
    if (added.length) this.#verifying = this.#verifyCommitted(added)
    this.#joined = true
    this.#log.info({ partitions: [...now].sort() }, 'joined the consumer group')
    this.#wake?.()
  }

  #verifying: Promise<void> | undefined

  /**
   * The stream reads committed offsets without `require_stable`: a transaction that another process
   * committed just before it died may not show yet. Read them again a moment later and skip what
   * they cover, so that nothing committed is processed twice. (A transaction that was never
   * committed is aborted, and its offsets never move.)
   */
  async #verifyCommitted(partitions: string[]): Promise<void> {
    await sleep(500)
    const byTopic = new Map<string, number[]>()
    for (const tp of partitions) {
      const i = tp.lastIndexOf(':')
      const topic = tp.slice(0, i)
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), Number(tp.slice(i + 1))])
    }
    // Until it succeeds: going on without it could process a committed batch again.
    await this.#untilDone('re-read the committed offsets after a rebalance', async () => {
      const committed = await this.#step(
        this.#consumer!.listCommittedOffsets({
          topics: [...byTopic].map(([topic, ps]) => ({ topic, partitions: ps })),
        }),
        'OffsetFetch',
      )
      this.#log.debug(
        { committed: Object.fromEntries([...committed].map(([t, ps]) => [t, ps.map(String)])) },
        'committed offsets re-read after joining',
      )
      for (const [topic, ps] of byTopic) {
        for (const p of ps) {
          const c = committed.get(topic)?.[p]
          const tp = `${topic}:${p}`
          if (c !== undefined && c >= 0n && this.#assigned.has(tp) && c > (this.#expected.get(tp) ?? -1n))
            this.#expected.set(tp, c)
        }
      }
    })
  }

  /**
   * Messages dropped without being processed are fetched again from the committed offset, which
   * the stream knows only once a partition has a commit. For a partition without one yet (no
   * batch committed in this process), subscribe again, so that nothing is skipped.
   */
  #mustRefetch(dropped: Msg[]): void {
    if (dropped.some((m) => !this.#expected.has(`${m.topic}:${m.partition}`))) this.#resubscribe = true
  }

  async #run(): Promise<void> {
    let backoff = 100
    while (this.#running) {
      try {
        if (this.#resubscribe) await this.#subscribe()
        if (this.#buffer.length === 0) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve
            setTimeout(resolve, 500)
          })
          this.#wake = undefined
          continue
        }
        if (this.#verifying) {
          await this.#verifying
          this.#verifying = undefined
        }
        const batch = this.#takeBatch()
        if (batch.length > 0) {
          if (this.#log.isLevelEnabled('debug'))
            this.#log.debug({ messages: batch.length, partitions: partitionsOf(batch) }, 'batch taken')
          await this.#processWithRetry(batch)
        }
        if (this.#paused && this.#buffer.length < this.#opts.bufferMax / 2) {
          this.#paused = false
          this.#stream?.resume()
        }
        backoff = 100
      } catch (e) {
        this.#lastError = errorText(e)
        this.#log.error({ err: e }, 'engine loop error')
        await sleep(backoff)
        backoff = Math.min(backoff * 2, 10_000)
      }
    }
  }

  /** The next batch, in order, skipping what this process already processed (re-fetched after a rebalance). */
  #takeBatch(): Msg[] {
    const batch: Msg[] = []
    let i = 0
    for (; i < this.#buffer.length && batch.length < this.#opts.batchMax; i++) {
      const m = this.#buffer[i]!
      const tp = `${m.topic}:${m.partition}`
      const expected = this.#expected.get(tp)
      if (expected !== undefined && m.offset < expected) continue
      batch.push(m)
    }
    this.#buffer = this.#buffer.slice(i)
    return batch
  }

  /**
   * One batch: activate it (pull store, webhooks, history), retried until it succeeds; then hand its
   * Kafka transaction to the committer, which runs while the next batch is activated. Transactions
   * stay in batch order: a batch's commit starts only after the previous one has finished.
   */
  async #processWithRetry(batch: Msg[]): Promise<void> {
    const prepared = await this.#prepareWithRetry(batch)
    await this.#pendingCommit
    if (!prepared || !this.#running) return
    this.#pendingCommit = this.#commitWithRetry(prepared)
  }

  #pendingCommit: Promise<void> | undefined

  async #prepareWithRetry(batch: Msg[]): Promise<Prepared | undefined> {
    let backoff = 200
    for (let attempt = 1; this.#running; attempt++) {
      try {
        return await this.#prepare(batch)
      } catch (e) {
        this.#lastError = errorText(e)
        this.#deps.metrics.batches.inc({ result: 'retry' })
        const level = e instanceof RetryableOutputError ? 'warn' : 'error'
        this.#log[level](
          { err: errorText(e), attempt, partitions: partitionsOf(batch) },
          'batch failed; retrying (nothing committed)',
        )
        await sleep(backoff)
        backoff = Math.min(backoff * 2, 30_000)
      }
    }
    return undefined
  }

  async #commitWithRetry(p: Prepared): Promise<void> {
    let backoff = 200
    for (let attempt = 1; this.#running; attempt++) {
      try {
        await this.#commit(p, attempt > 1)
        this.#deps.metrics.batches.inc({ result: 'ok' })
        this.#lastError = undefined
        this.#committed(p)
        return
      } catch (e) {
        this.#lastError = errorText(e)
        if (flagged(e, 'needsRejoin')) {
          // Fenced by a rebalance: this batch's outputs were aborted with its transaction. The
          // partitions are re-fetched from their committed offsets (here or by their new owner);
          // the replay keeps the recorded decisions.
          this.#deps.metrics.batches.inc({ result: 'fenced' })
          this.#log.warn(
            { err: errorText(e) },
            'batch fenced by a rebalance; re-reading from the committed offsets',
          )
          this.#mustRefetch(p.batch.filter((m) => this.#assigned.has(`${m.topic}:${m.partition}`)))
          return
        }
        if (flagged(e, 'producerFenced') || /PRODUCER_FENCED/.test(this.#lastError)) {
          this.#log.error(
            { err: errorText(e) },
            'the transactional producer was fenced: does another engine use the same RIFFLE_ENGINE_ID?',
          )
        }
        this.#deps.metrics.batches.inc({ result: 'retry' })
        this.#log.error(
          { err: errorText(e), attempt, partitions: partitionsOf(p.batch) },
          'commit failed; retrying',
        )
        await sleep(backoff)
        backoff = Math.min(backoff * 2, 30_000)
      }
    }
  }

  /** Decode and validate, then activate every campaign on the batch's streams. */
  async #prepare(batch: Msg[]): Promise<Prepared> {
    const t0 = performance.now()
    const plan = this.#plan!
    const metrics = this.#deps.metrics
    const dead: DeadLetter[] = []
    const work = new Map<string, { campaign: CampaignRuntime; triggers: TriggerItem[] }>()
    const eventsIn = new Map<string, number>()
    for (const m of batch) {
      const sp = plan.byTopic.get(m.topic)
      if (!sp) continue // a topic no campaign listens to any more: commit past it
      eventsIn.set(sp.stream.name, (eventsIn.get(sp.stream.name) ?? 0) + 1)
      const d = sp.decoder.decode(m.value)
      if (!d.ok) {
        metrics.deadLetters.inc({ stream: sp.stream.name, reason: d.reason })
        this.#log.warn(
          {
            stream: sp.stream.name,
            topic: m.topic,
            partition: m.partition,
            offset: m.offset.toString(),
            reason: d.reason,
          },
          'dead-lettered',
        )
        dead.push({
          topic: sp.dlqTopic,
          key: m.key,
          value: m.value,
          headers: {
            'riffle-dlq-reason': d.reason,
            'riffle-dlq-detail': d.detail,
            'riffle-source-topic': m.topic,
            'riffle-source-partition': String(m.partition),
            'riffle-source-offset': m.offset.toString(),
            'riffle-stream': sp.stream.name,
          },
        })
        continue
      }
      const customerKey = d.key ?? m.key?.toString('utf8') ?? ''
      const timestamp = Number(m.timestamp)
      const trigger: TriggerItem = {
        source: { kind: 'stream', topic: m.topic, partition: m.partition, offset: m.offset.toString() },
        customerKey,
        eventTime: d.eventTime ?? timestamp,
        scope: {
          event: d.event,
          meta: {
            topic: m.topic,
            partition: BigInt(m.partition),
            offset: m.offset.toString(),
            timestamp: new Date(timestamp),
            key: m.key?.toString('utf8') ?? '',
          },
        },
      }
      for (const campaign of sp.campaigns) {
        let w = work.get(campaign.name)
        if (!w) {
          w = { campaign, triggers: [] }
          work.set(campaign.name, w)
        }
        w.triggers.push(trigger)
      }
    }

    // once per stream and batch: a labelled counter costs a lookup per call
    for (const [stream, n] of eventsIn) metrics.eventsIn.inc({ stream }, n)

    const deps: ActivateDeps = {
      pull: this.#deps.pull,
      history: this.#history,
      dedupe: this.#deps.dedupe,
      webhooks: this.#deps.webhooks,
      yieldToIo,
    }
    await yieldToIo()
    const outcome = await activateBatch([...work.values()], deps)
    // The history append may still be in flight: the Kafka transaction waits for it before EndTxn.
    const durable = this.#history.durable()
    return { batch, plan, dead, outcome, durable, activateMs: performance.now() - t0 }
  }

  /** One transaction: outputs, dead letters and the consumed offsets, or none of them. */
  async #commit(p: Prepared, retry: boolean): Promise<void> {
    // A failed commit may still have reached the coordinator. A retry first ends whatever the last
    // attempt left open (a new producer's InitProducerId does), then asks whether the offsets are
    // already committed: if so, the outputs are too, and sending them again would duplicate them.
    if (retry) await this.#dropProducer()
    const producer = this.#getProducer()
    let tx: Awaited<ReturnType<typeof producer.beginTransaction>>
    try {
      tx = await this.#step(producer.beginTransaction(), 'InitProducerId')
    } catch (e) {
      await this.#dropProducer()
      throw e
    }
    if (retry && (await this.#alreadyCommitted(p.batch))) {
      await this.#step(tx.cancel(), 'cancel').catch(() => this.#dropProducer())
      this.#log.warn(
        { partitions: partitionsOf(p.batch) },
        'the previous commit attempt had succeeded; not sending again',
      )
      return
    }
    try {
      const messages = [
        ...p.outcome.kafka.map((r) => ({
          topic: r.topic,
          key: Buffer.from(r.key),
          value: Buffer.from(r.value),
          headers: bufferHeaders(r.headers),
        })),
        // The history mirror, for Kafka Connect sinks: replayed activations too, as their first
        // transaction was aborted.
        ...(this.#opts.historyTopic
          ? mirrorMessages(this.#opts.historyTopic, [...p.outcome.replayed, ...p.outcome.activations]).map(
              (r) => ({
                topic: r.topic,
                key: Buffer.from(r.key),
                value: Buffer.from(r.value),
                headers: bufferHeaders(r.headers),
              }),
            )
          : []),
        // The dead letter keeps the original bytes, whatever they are.
        ...p.dead.map((d) => ({
          topic: d.topic,
          key: d.key ?? undefined,
          value: d.value ?? Buffer.alloc(0),
          headers: bufferHeaders(d.headers),
        })),
      ]
      const t0 = performance.now()
      // Chunked: one produce request stays well under the broker's message size limit.
      for (const part of partsOf(messages)) await this.#step(tx.send({ messages: part.messages }), 'Produce')
      const t1 = performance.now()
      // After the outputs, not alongside them: AddOffsetsToTxn next to AddPartitionsToTxn meets
      // CONCURRENT_TRANSACTIONS at the coordinator, which made both slower here (p50 5.4 -> 6.3 ms).
      await this.#step(tx.addConsumer(this.#consumer!), 'AddOffsetsToTxn')
      // one TxnOffsetCommit for every partition of the batch (addOffset sends one per partition)
      await this.#step(addOffsetsToTransaction(producer, tx.id, lastPerPartition(p.batch)), 'TxnOffsetCommit')
      const t2 = performance.now()
      // Offsets are committed only once every output is durable, the history included. An append
      // that failed is made again here (idempotent); if that fails too, the transaction is aborted.
      await p.durable.catch(() => this.#deps.history.append(p.outcome.activations))
      await this.#step(tx.commit(), 'EndTxn')
      if (this.#log.isLevelEnabled('debug')) {
        this.#log.debug(
          { sendMs: t1 - t0, offsetsMs: t2 - t1, commitMs: performance.now() - t2 },
          'transaction timings',
        )
      }
    } catch (e) {
      const aborted = await this.#step(tx.abort(), 'EndTxn (abort)').then(
        () => true,
        () => false,
      )
      if (!aborted) await this.#dropProducer()
      throw e
    }
  }

  async #alreadyCommitted(batch: Msg[]): Promise<boolean> {
    const last = lastPerPartition(batch)
    const byTopic = new Map<string, number[]>()
    for (const m of last) byTopic.set(m.topic, [...(byTopic.get(m.topic) ?? []), m.partition])
    const committed = await this.#step(
      this.#consumer!.listCommittedOffsets({
        topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
      }),
      'OffsetFetch',
    )
    return last.every((m) => (committed.get(m.topic)?.[m.partition] ?? -1n) >= m.offset + 1n)
  }

  /** Durable: advance the expected offsets, measure, log what did not complete. */
  #committed(p: Prepared): void {
    const { batch, plan, outcome } = p
    const metrics = this.#deps.metrics
    for (const m of lastPerPartition(batch)) this.#expected.set(`${m.topic}:${m.partition}`, m.offset + 1n)
    this.#processed += batch.length
    const done = Date.now()
    // the labelled histogram once per topic and batch, not a label lookup per message
    const latency = new Map<string, ReturnType<typeof metrics.latency.labels> | null>()
    for (const m of batch) {
      let h = latency.get(m.topic)
      if (h === undefined) {
        const sp = plan.byTopic.get(m.topic)
        h = sp ? metrics.latency.labels({ stream: sp.stream.name }) : null
        latency.set(m.topic, h)
      }
      h?.observe(Math.max(0, done - Number(m.timestamp)) / 1000)
    }
    if (this.#log.isLevelEnabled('debug')) {
      this.#log.debug(
        { messages: batch.length, activateMs: p.activateMs, latencyMs: done - Number(batch[0]!.timestamp) },
        'batch committed',
      )
    }
    for (const [k, n] of outcome.counts) {
      const [campaign, cell, status] = k.split('\u0000') as [string, string, string]
      metrics.activations.inc({ campaign, cell, status }, n)
      if (status === 'error') metrics.campaignErrors.inc({ campaign }, n)
    }
    for (const [k, n] of outcome.outputs) {
      const [channel, status] = k.split('\u0000') as [string, string]
      metrics.outputs.inc({ channel, status }, n)
    }
    // One log line per campaign and batch for activations that did not complete, with the first offset.
    const incomplete = new Map<string, { n: number; first: (typeof outcome.activations)[number] }>()
    for (const a of outcome.activations) {
      if (a.status !== 'error' && a.status !== 'failed') continue
      const k = `${a.campaign}\u0000${a.status}`
      const e = incomplete.get(k)
      if (e) e.n++
      else incomplete.set(k, { n: 1, first: a })
    }
    for (const { n, first: a } of incomplete.values()) {
      const src = a.source.kind === 'stream' ? a.source : undefined
      this.#log.warn(
        {
          campaign: a.campaign,
          version: a.campaignVersion,
          topic: src?.topic,
          partition: src?.partition,
          offset: src?.offset,
          status: a.status,
          reason: a.reason,
          count: n,
        },
        'activations did not complete',
      )
    }
  }
}

interface Prepared {
  batch: Msg[]
  plan: EnginePlan
  dead: DeadLetter[]
  outcome: Awaited<ReturnType<typeof activateBatch>>
  /** Settles once the batch's history is committed; rejects if that append failed. */
  durable: Promise<void>
  activateMs: number
}

interface DeadLetter {
  topic: string
  key: Buffer | null | undefined
  value: Buffer | null | undefined
  headers: Record<string, string>
}

function bufferHeaders(h: Record<string, string>): Map<Buffer, Buffer> {
  return new Map(Object.entries(h).map(([k, v]) => [Buffer.from(k), Buffer.from(v)]))
}

function lastPerPartition(batch: Msg[]): Msg[] {
  const last = new Map<string, Msg>()
  for (const m of batch) last.set(`${m.topic}:${m.partition}`, m)
  return [...last.values()]
}

function partitionsOf(batch: Msg[]): string[] {
  return [...new Set(batch.map((m) => `${m.topic}:${m.partition}`))]
}
