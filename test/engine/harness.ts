/** An engine wired to real stores and the real Kafka broker, for tests. */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Consumer, Producer, stringSerializers } from '@platformatic/kafka'
import { Registry } from 'prom-client'
import { openDatabase, type SqlDatabase } from '../../src/db/sql.js'
import { DefinitionsService } from '../../src/definitions/service.js'
import { parseDefinitionsText } from '../../src/definitions/source.js'
import { DefinitionsStore } from '../../src/definitions/store.js'
import { DedupeStore } from '../../src/engine/dedupe.js'
import { Engine, type EngineOptions } from '../../src/engine/engine.js'
import { EngineMetrics } from '../../src/engine/metrics.js'
import { TargetPolicy } from '../../src/engine/ssrf.js'
import { WebhookSender } from '../../src/engine/webhook.js'
import type { HistoryEntry } from '../../src/history/schema.js'
import { HistoryStore } from '../../src/history/store.js'
import { honourAbortedTransactions } from '../../src/kafka/read-committed.js'
import { createLogger } from '../../src/log.js'
import { openPullStore } from '../../src/pull/open.js'
import type { PullStore } from '../../src/pull/store.js'
import { kafkaBrokers, tempDir } from '../helpers.js'

export interface Harness {
  db: SqlDatabase
  defs: DefinitionsService
  pull: PullStore
  history: HistoryStore
  engine: Engine
  metrics: Registry
  /** Stops the engine and starts a new one on the same stores and consumer group (a process restart). */
  restart(): Promise<void>
  apply(yaml: string): Promise<void>
  close(): Promise<void>
}

export async function startEngine(
  opts: Partial<EngineOptions> & {
    pullUrl?: string
    /** What the engine appends to instead of the history store itself (to inject failures). */
    historyPort?: (history: HistoryStore) => HistoryStore
  } = {},
): Promise<Harness> {
  const tmp = tempDir('riffle-engine-')
  const db = await openDatabase('sqlite:', tmp.dir)
  const defs = new DefinitionsService(await DefinitionsStore.open(db))
  const pull = await openPullStore(opts.pullUrl ?? 'sqlite:', tmp.dir)
  const history = await HistoryStore.open(db)
  const dedupe = await DedupeStore.open(db)
  const metrics = new Registry()
  const groupId = `riffle-test-${randomUUID().slice(0, 8)}`
  const engineId = `test-${randomUUID().slice(0, 8)}`
  const make = () =>
    new Engine(
      {
        defs,
        pull,
        history: opts.historyPort ? opts.historyPort(history) : history,
        dedupe,
        webhooks: new WebhookSender(new TargetPolicy(['127.0.0.1']), 20),
        log: createLogger(process.env.RIFFLE_TEST_LOG ?? 'silent'),
        metrics: engineMetrics,
      },
      { brokers: kafkaBrokers(), groupId, engineId, reloadMs: 200, ...opts },
    )
  const engineMetrics = new EngineMetrics(metrics)
  const h: Harness = {
    db,
    defs,
    pull,
    history,
    engine: make(),
    metrics,
    restart: async () => {
      await h.engine.stop()
      h.engine = make()
      await h.engine.start()
    },
    apply: async (yaml) => {
      await defs.apply(parseDefinitionsText(yaml), { actor: 'test' })
      await pull.prepare((await defs.snapshot()).definitions.collections)
    },
    close: async () => {
      await h.engine.stop()
      await pull.close()
      await db.close()
      tmp.cleanup()
    },
  }
  return h
}

export async function produce(
  topic: string,
  messages: Array<{ key?: string; value: string | Buffer | null }>,
): Promise<void> {
  // Idempotent: a plain producer's retry (say, while a new topic's leader is elected) can write a
  // message twice (seen: 54 records for 30), and tests count what they produced.
  const p = new Producer({
    clientId: 'test-producer',
    bootstrapBrokers: kafkaBrokers(),
    autocreateTopics: true,
    idempotent: true,
    producerId: -1n,
    producerEpoch: -1,
    acks: -1,
  })
  await p.send({
    messages: messages.map((m) => ({
      topic,
      key: m.key === undefined ? undefined : Buffer.from(m.key),
      value: m.value === null ? Buffer.alloc(0) : Buffer.isBuffer(m.value) ? m.value : Buffer.from(m.value),
    })),
  })
  await p.close()
}

export async function createTopic(topic: string, partitions = 1): Promise<void> {
  const { Admin } = await import('@platformatic/kafka')
  const admin = new Admin({ clientId: 'test-admin', bootstrapBrokers: kafkaBrokers() })
  await admin.createTopics({ topics: [topic], partitions, replicas: 1 })
  await admin.close()
}

export interface Read {
  key: string | null
  value: string
  headers: Record<string, string>
  partition: number
  offset: bigint
}

/** Reads a topic from the start with read_committed until `until` holds or the time runs out. */
export async function readTopic(
  topic: string,
  until: (msgs: Read[]) => boolean,
  timeoutMs = 30_000,
  /** Once `until` holds, keep reading this long (to catch duplicates that would follow). */
  settleMs = 0,
): Promise<Read[]> {
  const c = honourAbortedTransactions(
    new Consumer({
      clientId: 'test-reader',
      groupId: `test-reader-${randomUUID()}`,
      bootstrapBrokers: kafkaBrokers(),
      isolationLevel: 1,
      maxWaitTime: 100,
    }),
  )
  const out: Read[] = []
  const stream = await c.consume({
    topics: [topic],
    mode: 'earliest',
    autocommit: false,
    isolationLevel: 1,
    maxWaitTime: 100,
  })
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, timeoutMs)
    let settling = false
    const done = () => {
      if (settling) return
      settling = true
      clearTimeout(t)
      setTimeout(resolve, settleMs)
    }
    stream.on('data', (m) => {
      const headers: Record<string, string> = {}
      for (const [k, v] of m.headers) headers[k.toString()] = v.toString()
      out.push({
        key: m.key?.length ? m.key.toString() : null,
        value: m.value?.toString() ?? '',
        headers,
        partition: m.partition,
        offset: m.offset,
      })
      if (until(out)) done()
    })
    if (until(out)) done()
  })
  await stream.close()
  await c.close()
  return out
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      last = undefined
      if (v !== undefined && v !== false) return v as T
    } catch (e) {
      last = e
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
}

/** A local webhook receiver (the third party a user would run). */
export async function webhookReceiver(respond: (req: IncomingMessage, body: string) => number = () => 200) {
  const received: Array<{ headers: IncomingMessage['headers']; body: string; status: number }> = []
  const server: Server = createServer((req, res) => {
    let body = ''
    req.on('data', (d) => (body += d))
    req.on('end', () => {
      const status = respond(req, body)
      received.push({ headers: req.headers, body, status })
      res.writeHead(status).end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

export { stringSerializers }

/** Every history record of a campaign, all pages. */
export async function allActivations(history: HistoryStore, campaign: string): Promise<HistoryEntry[]> {
  const items: HistoryEntry[] = []
  let cursor: string | undefined
  do {
    const p = await history.list({ campaign }, { limit: 1000, ...(cursor ? { cursor } : {}) })
    items.push(...p.items)
    cursor = p.nextCursor ?? undefined
  } while (cursor)
  return items
}

/**
 * Writes to `topic` as a transactional producer restarted `lifetimes` times with one transactional
 * id (as an engine after kill -9): per lifetime, `transactions` transactions of `perTransaction`
 * messages, committed and aborted in turn. Returns the ids of the committed messages, in order;
 * `message` makes each message from its id (`<life>.<t>.<i>.committed|aborted`).
 */
export async function writeCommittedAndAborted(
  topic: string,
  opts: { lifetimes: number; transactions: number; perTransaction: number },
  message: (id: string) => { key: Buffer; value: Buffer },
): Promise<string[]> {
  const transactionalId = `${topic}-writer`
  const committed: string[] = []
  for (let life = 0; life < opts.lifetimes; life++) {
    const p = new Producer({
      clientId: 'test-tx-writer',
      bootstrapBrokers: kafkaBrokers(),
      transactionalId,
      idempotent: true,
      producerId: -1n,
      producerEpoch: -1,
      acks: -1,
    })
    try {
      for (let t = 0; t < opts.transactions; t++) {
        const commit = t % 2 === 0
        const ids = Array.from(
          { length: opts.perTransaction },
          (_, i) => `${life}.${t}.${i}.${commit ? 'committed' : 'aborted'}`,
        )
        const tx = await p.beginTransaction()
        await tx.send({ messages: ids.map((id) => ({ topic, ...message(id) })) })
        if (commit) {
          await tx.commit()
          committed.push(...ids)
        } else await tx.abort()
      }
    } finally {
      await p.close()
    }
  }
  return committed
}
