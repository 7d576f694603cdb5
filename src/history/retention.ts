/**
 * Retention: keeps N days of output history, and never drops a record that a registered export
 * consumer has not taken yet. When that holds records back, it says so in the log and in metrics.
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Logger } from '../log.js'
import type { HistoryStore, PurgeResult } from './store.js'

const DAY_MS = 86_400_000

export interface RetentionOptions {
  store: HistoryStore
  /** Days of history to keep. */
  days: number
  log: Logger
  metrics?: Registry
  /** Injected clock, for tests. */
  now?: () => number
}

interface Metrics {
  blocked: Gauge
  purged: Counter
  lag: Gauge<'consumer'>
  runs: Counter<'result'>
}

function metricsIn(registry: Registry): Metrics {
  const existing = registry.getSingleMetric('riffle_history_retention_blocked_records')
  if (existing) {
    return {
      blocked: existing as Gauge,
      purged: registry.getSingleMetric('riffle_history_purged_records_total') as Counter,
      lag: registry.getSingleMetric('riffle_history_consumer_lag_records') as Gauge<'consumer'>,
      runs: registry.getSingleMetric('riffle_history_retention_runs_total') as Counter<'result'>,
    }
  }
  return {
    blocked: new Gauge({
      name: 'riffle_history_retention_blocked_records',
      help: 'Records past the retention period kept because an export consumer has not taken them',
      registers: [registry],
    }),
    purged: new Counter({
      name: 'riffle_history_purged_records_total',
      help: 'Output history records deleted by retention',
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'riffle_history_consumer_lag_records',
      help: 'Records an export consumer has not exported yet',
      labelNames: ['consumer'],
      registers: [registry],
    }),
    runs: new Counter({
      name: 'riffle_history_retention_runs_total',
      help: 'Retention runs, by result: ok, blocked or error',
      labelNames: ['result'],
      registers: [registry],
    }),
  }
}

export class HistoryRetention {
  readonly #opts: RetentionOptions
  readonly #metrics: Metrics | undefined
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  #running: Promise<unknown> | undefined

  constructor(opts: RetentionOptions) {
    this.#opts = opts
    this.#metrics = opts.metrics ? metricsIn(opts.metrics) : undefined
    this.#log = opts.log.child({ component: 'history-retention' })
  }

  /** Records with an output time before this are due for deletion. */
  cutoff(): number {
    return (this.#opts.now ?? Date.now)() - this.#opts.days * DAY_MS
  }

  /** Runs retention once. */
  async purge(): Promise<PurgeResult> {
    const cutoff = this.cutoff()
    const m = this.#metrics
    try {
      const result = await this.#opts.store.purge(cutoff)
      m?.purged.inc(result.purged)
      m?.blocked.set(result.blocked)
      if (m) {
        m.lag.reset()
        for (const [consumer, n] of await this.#opts.store.consumerLag()) m.lag.set({ consumer }, n)
      }
      if (result.purged > 0)
        this.#log.info(
          { purged: result.purged, cutoff: new Date(cutoff).toISOString() },
          'purged output history past retention',
        )
      if (result.blocked > 0) {
        m?.runs.inc({ result: 'blocked' })
        this.#log.warn(
          {
            blocked: result.blocked,
            consumers: result.blockedBy,
            retentionDays: this.#opts.days,
            cutoff: new Date(cutoff).toISOString(),
          },
          `output history retention is blocked: ${result.blocked} records older than ${this.#opts.days} days are kept because export consumer(s) ${result.blockedBy.join(', ')} have not exported them; run their exports, or remove a consumer that is no longer used`,
        )
      } else m?.runs.inc({ result: 'ok' })
      return result
    } catch (e) {
      m?.runs.inc({ result: 'error' })
      this.#log.error({ err: e }, 'output history retention failed')
      throw e
    }
  }

  /** Runs retention now and then every `intervalMs` until stopped. */
  start(intervalMs = 3_600_000): void {
    if (this.#timer) return
    const tick = () => {
      if (this.#running) return
      this.#running = this.purge()
        .catch(() => {})
        .finally(() => {
          this.#running = undefined
        })
    }
    tick()
    this.#timer = setInterval(tick, intervalMs)
    this.#timer.unref()
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#running
  }
}
