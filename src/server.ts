/**
 * `riffle start`: the API, the Pull API, the engine and the background jobs in one process,
 * composed from the same services every other transport uses.
 */
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './api/app.js'
import { createMetricsRegistry, type ReadinessCheck } from './api/routes/health.js'
import type { Config } from './config.js'
import { openDataStore } from './datastore/store.js'
import { DedupeStore } from './engine/dedupe.js'
import { DecisionService } from './engine/explain.js'
import { createEngine, type Engine } from './engine/index.js'
import { TargetPolicy } from './engine/ssrf.js'
import { WebhookSender } from './engine/webhook.js'
import { HistoryRetention } from './history/retention.js'
import { KafkaAdmin } from './kafka/admin.js'
import { createLogger, type Logger } from './log.js'
import { openRiffle, packageVersion, type Riffle, resolveKafkaBrokers } from './runtime.js'
import { Scheduler } from './scheduler/scheduler.js'
import { IngestService } from './streams/ingest.js'

/** The file in the data directory that names the running `riffle start`: `{pid, url, datastore}`. */
export const SERVER_MARKER = 'server.json'

export interface Server {
  app: FastifyInstance
  riffle: Riffle
  log: Logger
  url: string
  /** The engine, once Kafka is there (undefined before, or with RIFFLE_ENGINE=off). */
  engine(): Engine | undefined
  close(): Promise<void>
}

export async function startServer(
  config: Config,
  log: Logger = createLogger(config.logLevel),
): Promise<Server> {
  const riffle = await openRiffle(config, log)
  const metrics = createMetricsRegistry()
  const retention = new HistoryRetention({
    store: riffle.history,
    days: config.historyRetentionDays,
    log,
    metrics,
  })
  retention.start()

  // The local broker may take a while to start; the API answers meanwhile and /readyz says when
  // Kafka is there. A failed attempt is retried on the next use, at most every 10 seconds.
  let admin: KafkaAdmin | undefined
  let engine: Awaited<ReturnType<typeof createEngine>> | undefined
  let pending: Promise<string[]> | undefined
  let failedAt = 0
  let closing = false
  const brokers = (): Promise<string[]> => {
    if (!pending && Date.now() - failedAt < 10_000) {
      return Promise.reject(new Error('Kafka is not available yet; see the log'))
    }
    pending ??= resolveKafkaBrokers(config, log).then(
      async (b) => {
        admin ??= new KafkaAdmin(b)
        log.info({ brokers: b }, 'kafka brokers resolved')
        if (config.engine.enabled && !engine && !closing) {
          engine = await createEngine({
            config,
            log,
            db: riffle.db,
            defs: riffle.defs,
            history: riffle.history,
            pull: riffle.pull,
            brokers: b,
            registry: metrics,
          })
          await engine.engine.start()
        }
        return b
      },
      (e) => {
        log.error({ err: e }, 'kafka is not available')
        pending = undefined
        failedAt = Date.now()
        throw e
      },
    )
    return pending
  }
  brokers().catch(() => {})

  // The scheduler: cron triggers, manual runs, resuming interrupted runs (docs/scheduled-campaigns.md).
  const datastore = await openDataStore(config.datastoreUrl, config.dataDir, {
    allowFileAccess: config.datastoreAllowFileAccess,
  })
  const schedulerWebhooks = new WebhookSender(new TargetPolicy(config.engine.webhookAllow))
  const scheduler = await Scheduler.open(
    {
      db: riffle.db,
      defs: riffle.defs,
      datastore,
      pull: riffle.pull,
      history: riffle.history,
      webhooks: schedulerWebhooks,
      log: log.child({ component: 'scheduler' }),
      brokers,
      historyTopic: config.historyTopic,
      registry: metrics,
    },
    {
      owner: config.engine.id,
      ...(config.schedulerEnabled
        ? {}
        : {
            off: 'the scheduler is off in this process (RIFFLE_SCHEDULER=off): start the run through a process that runs the scheduler, or with `riffle run CAMPAIGN`',
          }),
    },
  )
  if (config.schedulerEnabled) scheduler.start()
  else log.info('scheduler off (RIFFLE_SCHEDULER=off): no schedules fire and no runs start in this process')

  const readiness: ReadinessCheck[] = [
    { name: 'database', check: () => riffle.db.ping() },
    { name: 'pull store', check: () => riffle.pull.ping() },
    {
      name: 'kafka',
      check: async () => {
        await brokers()
        await admin!.ping()
      },
    },
  ]
  if (config.engine.enabled) {
    readiness.push({
      name: 'engine',
      check: async () => {
        if (!engine?.engine.ready) throw new Error('the engine has not joined its consumer group yet')
      },
    })
  }
  const decisions = new DecisionService({
    defs: riffle.defs,
    pull: riffle.pull,
    history: riffle.history,
    dedupe: await DedupeStore.open(riffle.db),
    webhooks: new WebhookSender(new TargetPolicy(config.engine.webhookAllow)),
    brokers,
  })
  const ingest = new IngestService(riffle.defs, brokers)
  const app = await buildApp({
    log,
    defs: riffle.defs,
    keys: riffle.keys,
    metrics,
    readiness,
    brokers,
    version: packageVersion(),
    history: riffle.history,
    pull: riffle.pull,
    decisions,
    ingest,
    scheduler,
    datastore,
    uploadDir: join(config.dataDir, 'uploads'),
  })
  await app.listen({ port: config.port, host: config.host })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : config.port
  const url = `http://${config.host}:${port}`
  log.info(
    { url, dataDir: config.dataDir, database: riffle.db.description },
    `riffle listening on ${url} (API docs at ${url}/docs)`,
  )
  // Tells `riffle datastore load` on this data directory that this process holds the DuckDB file,
  // so that it loads through the API instead (docs/scheduled-campaigns.md).
  const marker = join(config.dataDir, SERVER_MARKER)
  const mine = JSON.stringify({ pid: process.pid, url, datastore: datastore.kind })
  await writeFile(marker, `${mine}\n`).catch((e) => log.warn({ err: e }, 'cannot write the server marker'))

  return {
    app,
    riffle,
    log,
    url,
    engine: () => engine?.engine,
    close: async () => {
      closing = true
      await app.close().catch(() => {})
      await engine?.close().catch(() => {})
      await ingest.close()
      await admin?.close()
      await retention.stop()
      await scheduler.stop().catch(() => {})
      await schedulerWebhooks.close()
      await datastore.close()
      if ((await readFile(marker, 'utf8').catch(() => '')).trim() === mine) await rm(marker, { force: true })
      await riffle.close().catch(() => {})
    },
  }
}
