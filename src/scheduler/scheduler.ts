/**
 * Scheduled and manual runs of campaigns over the analytical data store.
 *
 * Policies (documented in docs/scheduled-campaigns.md):
 * - No overlap: a run of a campaign needs the campaign's lease. A scheduled time that comes while
 *   a run of the same campaign is going is recorded as a `skipped` run naming the running one; a
 *   manual run is refused with RIFFLE_CONFLICT.
 * - Catch-up: when the scheduler starts, the latest scheduled time missed within `catchUpMs`
 *   (default 6 hours) runs once (trigger `catch-up`); older ones are not run.
 * - Several processes: a scheduled time's run record has a deterministic id, so only the process
 *   whose INSERT lands fires it; the lease then keeps runs from overlapping.
 * - A run whose process died (status `running`, lease expired) is resumed from its last completed
 *   batch by the next scheduler that sees it; the activation id keeps outputs from repeating.
 */
import { randomUUID } from 'node:crypto'
import { Producer } from '@platformatic/kafka'
import { Gauge, type Registry } from 'prom-client'
import type { ColumnInfo, DataStore } from '../datastore/store.js'
import { DEFAULT_BATCH, quoteIdent, quoteTable } from '../datastore/store.js'
import type { SqlDatabase } from '../db/sql.js'
import type { Campaign } from '../definitions/schema.js'
import type { DefinitionsService } from '../definitions/service.js'
import type { CompiledCampaign } from '../definitions/validate.js'
import { activateBatch, type TriggerItem } from '../engine/activate.js'
import { DedupeStore } from '../engine/dedupe.js'
import { campaignRuntime } from '../engine/plan.js'
import type { WebhookSender } from '../engine/webhook.js'
import { isRiffleError, riffleError } from '../errors.js'
import { compileChecked } from '../expressions/cel.js'
import type { Activation } from '../history/activation.js'
import { HistoryMirror } from '../history/mirror.js'
import { type BackgroundHistory, PipelinedHistory } from '../history/pipeline.js'
import { SerialProducer } from '../kafka/serial-producer.js'
import type { Logger } from '../log.js'
import type { PullStore } from '../pull/store.js'
import { latestDue, parseSchedule } from './cron.js'
import { type RunRecord, RunStore, type RunTrigger } from './runs.js'
import { checkOutputTypes } from './typecheck.js'

export interface SchedulerDeps {
  db: SqlDatabase
  defs: DefinitionsService
  datastore: DataStore
  pull: PullStore
  history: BackgroundHistory
  webhooks: WebhookSender
  log: Logger
  /** Kafka brokers, asked for only when a campaign has a Kafka output or the history is mirrored. */
  brokers?: () => Promise<string[]>
  /**
   * Mirror every activation to this Kafka topic (`RIFFLE_HISTORY_TOPIC`), as the engine does: each
   * batch once its history is durable and before its progress is recorded, so at least once.
   */
  historyTopic?: string | undefined
  registry?: Registry
}

export interface SchedulerOptions {
  /** This process's id, recorded as the run owner and lease holder. */
  owner?: string
  /** Rows per batch (default 2,000). */
  batchSize?: number
  /** How often due schedules and orphaned runs are checked (default 1 s). */
  tickMs?: number
  /** Lease time to live; renewed every third of it while a run works (default 30 s). */
  leaseMs?: number
  /** A scheduled time missed by at most this much runs once at start-up (default 6 h). */
  catchUpMs?: number
  now?: () => number
  /**
   * Set when the scheduler is off in this process (RIFFLE_SCHEDULER=off): the reason manual runs
   * are refused with. Such a scheduler still lists and reads runs.
   */
  off?: string
}

export interface RunProgress {
  run: RunRecord
}

export interface StartedRun {
  run: RunRecord
  /** Settles with the final record once the run ends. */
  done: Promise<RunRecord>
}

interface Tally {
  rowsDone: number
  batchesDone: number
  cursor: string | number | null
  activations: Record<string, number>
  outputs: Record<string, number>
  errors: string[]
}

const MAX_ERRORS = 20

export class Scheduler {
  readonly runs: RunStore
  readonly #deps: SchedulerDeps
  readonly #dedupe: DedupeStore
  readonly #owner: string
  readonly #batch: number
  readonly #tickMs: number
  readonly #leaseMs: number
  readonly #catchUpMs: number
  readonly #now: () => number
  readonly #off: string | undefined
  readonly #active = new Map<string, Promise<RunRecord>>()
  readonly #fired = new Map<string, number>()
  readonly #firstSeen = new Map<string, number>()
  #startedAt = 0
  /** The definitions revision the pull store was last prepared for (its collections exist). */
  #preparedRevision = -1
  #timer: NodeJS.Timeout | undefined
  #ticking: Promise<void> | undefined
  #stopping = false
  #producer: SerialProducer | undefined
  #mirror: Promise<HistoryMirror> | undefined
  #gauges: { done: Gauge; selected: Gauge } | undefined
  /** Called after each completed batch (the CLI prints progress from it). */
  onProgress: ((run: RunRecord) => void) | undefined

  private constructor(deps: SchedulerDeps, runs: RunStore, dedupe: DedupeStore, opts: SchedulerOptions) {
    this.#deps = deps
    this.runs = runs
    this.#dedupe = dedupe
    this.#owner = opts.owner ?? `scheduler-${randomUUID().slice(0, 8)}`
    this.#batch = opts.batchSize ?? DEFAULT_BATCH
    this.#tickMs = opts.tickMs ?? 1000
    this.#leaseMs = opts.leaseMs ?? 30_000
    this.#catchUpMs = opts.catchUpMs ?? 6 * 3600_000
    this.#now = opts.now ?? Date.now
    this.#off = opts.off
    if (deps.registry) {
      const get = (name: string) => deps.registry!.getSingleMetric(name) as Gauge | undefined
      this.#gauges = {
        done:
          get('riffle_run_rows_done') ??
          new Gauge({
            name: 'riffle_run_rows_done',
            help: 'Rows done by the current (or last) run of each scheduled campaign',
            labelNames: ['campaign'],
            registers: [deps.registry],
          }),
        selected:
          get('riffle_run_rows_selected') ??
          new Gauge({
            name: 'riffle_run_rows_selected',
            help: 'Rows selected by the current (or last) run of each scheduled campaign',
            labelNames: ['campaign'],
            registers: [deps.registry],
          }),
      }
    }
  }

  static async open(deps: SchedulerDeps, opts: SchedulerOptions = {}): Promise<Scheduler> {
    const runs = await RunStore.open(deps.db)
    const dedupe = await DedupeStore.open(deps.db)
    return new Scheduler(deps, runs, dedupe, opts)
  }

  get owner(): string {
    return this.#owner
  }

  /** Whether this scheduler fires schedules and runs campaigns (false with RIFFLE_SCHEDULER=off). */
  get enabled(): boolean {
    return this.#off === undefined
  }

  /** Starts firing schedules (with the catch-up policy) and resuming orphaned runs. */
  start(): void {
    if (this.#off !== undefined) return
    this.#startedAt = this.#now()
    this.#stopping = false
    const loop = () => {
      if (this.#stopping) return
      this.#ticking = this.tick()
        .catch((e) => this.#deps.log.error({ err: e }, 'scheduler tick failed'))
        .finally(() => {
          if (!this.#stopping) this.#timer = setTimeout(loop, this.#tickMs)
        })
    }
    loop()
  }

  /** Stops firing; runs in progress stop after their current batch and are resumed later. */
  async stop(): Promise<void> {
    this.#stopping = true
    if (this.#timer) clearTimeout(this.#timer)
    await this.#ticking
    await Promise.allSettled([...this.#active.values()])
    const p = this.#producer
    this.#producer = undefined
    await p?.close()
    const m = this.#mirror
    this.#mirror = undefined
    await m?.then((x) => x.close()).catch(() => {})
  }

  /** One pass: fire due schedules, resume orphaned runs. Exposed for tests. */
  async tick(): Promise<void> {
    const now = this.#now()
    const snap = await this.#deps.defs.snapshot()
    for (const c of snap.definitions.campaigns) {
      if (!('schedule' in c.trigger) || c.status !== 'active') continue
      const compiled = snap.compiled.get(c.name)
      if (!compiled) continue
      const key = `${c.name}\u0000${c.trigger.schedule}\u0000${c.trigger.timezone ?? 'UTC'}`
      let first = this.#firstSeen.get(key)
      if (first === undefined) {
        // Present at start-up: missed times within the catch-up window count; added later: only new ones.
        first = this.#startedAt && now - this.#startedAt > this.#tickMs * 2 ? now : now - this.#catchUpMs
        this.#firstSeen.set(key, first)
      }
      let due: number | undefined
      try {
        due = latestDue(c.trigger.schedule, c.trigger.timezone, first, now)
      } catch (e) {
        this.#deps.log.error({ campaign: c.name, err: e }, 'invalid schedule')
        continue
      }
      if (due === undefined || this.#fired.get(key) === due) continue
      this.#fired.set(key, due)
      // more than a minute late: a time missed while no scheduler ran
      const trigger: RunTrigger = now - due > 60_000 ? 'catch-up' : 'schedule'
      const version = snap.versions.get(`campaign:${c.name}`) ?? 1
      await this.#fire(compiled, version, trigger, due)
    }
    for (const orphan of await this.runs.orphans(now)) {
      if (this.#active.has(orphan.campaign)) continue
      await this.#resume(orphan)
    }
  }

  /** Starts a manual run now. RIFFLE_CONFLICT when a run of the campaign is going. */
  async runNow(name: string): Promise<StartedRun> {
    const snap = await this.#deps.defs.snapshot()
    const c = snap.definitions.campaigns.find((x) => x.name === name)
    if (!c) throw riffleError('RIFFLE_NOT_FOUND', `no campaign "${name}"`)
    if (this.#off !== undefined) throw riffleError('RIFFLE_CONFLICT', this.#off)
    if ('stream' in c.trigger)
      throw riffleError(
        'RIFFLE_BAD_REQUEST',
        `campaign "${name}" is triggered by stream "${c.trigger.stream}"; only scheduled or manual campaigns run over the data store`,
      )
    if (c.status === 'archived') throw riffleError('RIFFLE_CONFLICT', `campaign "${name}" is archived`)
    const compiled = snap.compiled.get(name)
    if (!compiled) throw riffleError('RIFFLE_INVALID_DEFINITION', `campaign "${name}" does not compile`)
    const version = snap.versions.get(`campaign:${name}`) ?? 1
    const id = `${name}.manual.${this.#now()}.${randomUUID().slice(0, 6)}`
    const started = await this.#start(compiled, version, id, 'manual', null)
    if (!started) {
      const holder = await this.runs.leaseHolder(name, this.#now())
      throw riffleError(
        'RIFFLE_CONFLICT',
        `a run of campaign "${name}" is in progress (run ${holder ?? 'unknown'}); runs of one campaign never overlap`,
      )
    }
    return started
  }

  async #fire(compiled: CompiledCampaign, version: number, trigger: RunTrigger, due: number): Promise<void> {
    const name = compiled.campaign.name
    const id = `${name}.${due}`
    await this.#start(compiled, version, id, trigger, due)
  }

  /**
   * Creates the run record and takes the lease. Undefined for a manual run that cannot get the
   * lease (nothing is recorded); a scheduled time that cannot is recorded as skipped.
   */
  async #start(
    compiled: CompiledCampaign,
    version: number,
    id: string,
    trigger: RunTrigger,
    scheduledFor: number | null,
  ): Promise<StartedRun | undefined> {
    const name = compiled.campaign.name
    const now = this.#now()
    if (!(await this.runs.acquireLease(name, id, this.#owner, now, this.#leaseMs))) {
      if (trigger === 'manual') return undefined
      const holder = await this.runs.leaseHolder(name, now)
      // Another process is firing this very scheduled time: it records the run, not a skip.
      if (holder === id) return undefined
      await this.runs.create({
        id,
        campaign: name,
        campaignVersion: version,
        trigger,
        scheduledFor,
        status: 'skipped',
        owner: this.#owner,
        now,
        message: `skipped: run ${holder ?? '(another run)'} of this campaign was still in progress`,
      })
      return undefined
    }
    const created = await this.runs.create({
      id,
      campaign: name,
      campaignVersion: version,
      trigger,
      scheduledFor,
      status: 'running',
      owner: this.#owner,
      now,
    })
    if (!created) {
      // Another process fired this scheduled time already.
      await this.runs.releaseLease(name, id, this.#owner)
      return undefined
    }
    const run = await this.runs.get(id)
    this.#deps.log.info({ campaign: name, run: id, trigger }, 'run started')
    return { run, done: this.#track(name, this.#execute(compiled, version, run, true)) }
  }

  async #resume(orphan: RunRecord): Promise<void> {
    const now = this.#now()
    if (!(await this.runs.acquireLease(orphan.campaign, orphan.id, this.#owner, now, this.#leaseMs))) return
    const snap = await this.#deps.defs.snapshot()
    const compiled = snap.compiled.get(orphan.campaign)
    const version = snap.versions.get(`campaign:${orphan.campaign}`)
    if (!compiled || version !== orphan.campaignVersion) {
      await this.runs.finish(
        orphan.id,
        'failed',
        now,
        [
          ...orphan.errors,
          `the run was interrupted and cannot resume: campaign "${orphan.campaign}" is now ${compiled ? `version ${version}` : 'gone or invalid'}, the run was for version ${orphan.campaignVersion}`,
        ],
        'interrupted',
      )
      await this.runs.releaseLease(orphan.campaign, orphan.id, this.#owner)
      return
    }
    await this.runs.takeOver(orphan.id, this.#owner)
    this.#deps.log.info(
      { campaign: orphan.campaign, run: orphan.id, rowsDone: orphan.rowsDone },
      'resuming an interrupted run from its last completed batch',
    )
    void this.#track(
      orphan.campaign,
      this.#execute(compiled, version, { ...orphan, owner: this.#owner }, false),
    )
  }

  #track(campaign: string, p: Promise<RunRecord>): Promise<RunRecord> {
    const tracked = p.finally(() => {
      if (this.#active.get(campaign) === tracked) this.#active.delete(campaign)
    })
    this.#active.set(campaign, tracked)
    tracked.catch(() => {})
    return tracked
  }

  /** `fresh`: a run starting now, not one resumed after its process died. */
  async #execute(
    compiled: CompiledCampaign,
    version: number,
    run: RunRecord,
    fresh: boolean,
  ): Promise<RunRecord> {
    const campaign = compiled.campaign
    const name = campaign.name
    const log = this.#deps.log.child({ campaign: name, run: run.id })
    const tally: Tally = {
      rowsDone: run.rowsDone,
      batchesDone: run.batchesDone,
      cursor: run.cursor,
      activations: { ...run.activations },
      outputs: { ...run.outputs },
      errors: [...run.errors],
    }
    let leaseLost = false
    // see PipelinedHistory: a fresh run keyed by the key column reads back only its own writes
    const history = new PipelinedHistory(this.#deps.history, { ownWritesOnly: fresh && !compiled.key })
    const renew = setInterval(
      () => {
        void this.runs
          .renewLease(name, run.id, this.#owner, this.#now(), this.#leaseMs)
          .then((ok) => {
            if (!ok) leaseLost = true
          })
          .catch(() => {})
      },
      Math.max(50, Math.floor(this.#leaseMs / 3)),
    )
    try {
      const snap = await this.#deps.defs.snapshot()
      if (snap.revision !== this.#preparedRevision) {
        // A collection applied since this process started: make it exist before writing to it.
        await this.#deps.pull.prepare(snap.definitions.collections)
        this.#preparedRevision = snap.revision
      }
      const audience = campaign.audience!
      const keyColumn = audience.key ?? snap.definitions.datastore?.key ?? 'customer_id'
      const base =
        audience.sql !== undefined
          ? audience.sql.trim().replace(/;\s*$/, '')
          : `select * from ${quoteTable(audience.table!)}`
      const tableWhere =
        audience.sql === undefined && audience.where ? compileChecked(audience.where) : undefined
      // The columns first: a missing key column, or a column whose type does not fit the pull
      // field it fills, is named before any row is read or anything written.
      for await (const b of this.#deps.datastore.query(
        `select * from (${base}) as riffle_audience limit 0`,
      )) {
        checkColumns(b.columns, keyColumn, name)
        checkOutputTypes(campaign, snap.definitions.collections, b.columns)
      }
      if (run.rowsSelected === null) {
        let n = 0
        for await (const b of this.#deps.datastore.query(
          `select count(*) as n from (${base}) as riffle_audience`,
        )) {
          n = Number(b.rows[0]?.n ?? 0)
        }
        await this.runs.setSelected(run.id, n)
        run = { ...run, rowsSelected: n }
        this.#gauges?.selected.set({ campaign: name }, n)
      }
      const after = tally.cursor === null ? '' : `where ${quoteIdent(keyColumn)} > ${literal(tally.cursor)}`
      const sql = `select * from (${base}) as riffle_audience ${after} order by ${quoteIdent(keyColumn)}`
      const runtime = campaignRuntime(compiled, version)
      const deps = {
        pull: this.#deps.pull,
        history,
        dedupe: this.#dedupe,
        webhooks: this.#deps.webhooks,
        now: this.#now,
      }
      for await (const batch of this.#deps.datastore.query(sql, { batchSize: this.#batch })) {
        if (batch.rows.length === 0) break
        const convert = converter(batch.columns)
        const triggers: TriggerItem[] = []
        for (const raw of batch.rows) {
          const row = convert(raw)
          const k = raw[keyColumn]
          if (k === null || k === undefined || k === '') {
            addError(tally, `a row has no value in the key column "${keyColumn}"`)
            continue
          }
          if (tableWhere) {
            let ok: unknown
            try {
              ok = tableWhere({ row })
            } catch (e) {
              addError(tally, `audience.where: ${(e as Error).message.split('\n')[0]}`)
              continue
            }
            if (ok !== true) continue
          }
          const customerKey = compiled.key ? String(compiled.key({ row })) : String(k)
          triggers.push({
            source: { kind: 'run', runId: run.id },
            customerKey,
            eventTime: null,
            scope: { row },
          })
        }
        const outcome = await activateBatch([{ campaign: runtime, triggers }], deps)
        if (outcome.kafka.length) await this.#produce(outcome.kafka)
        let bad = 0
        for (const a of outcome.activations) {
          tally.activations[a.status] = (tally.activations[a.status] ?? 0) + 1
          if (a.status === 'error' || a.status === 'failed') {
            bad++
            addError(tally, a.reason ?? a.status)
          }
        }
        for (const [k, n] of outcome.outputs) {
          const key = k.replace('\u0000', ':')
          tally.outputs[key] = (tally.outputs[key] ?? 0) + n
        }
        if (bad > 0 && bad === outcome.activations.length)
          throw riffleError(
            'RIFFLE_BAD_REQUEST',
            `every activation of a batch failed; the run stops: ${tally.errors[tally.errors.length - 1]}`,
          )
        tally.rowsDone += batch.rows.length
        tally.batchesDone++
        tally.cursor = plainKey(batch.rows[batch.rows.length - 1]![keyColumn])
        // The progress record is where a resumed run starts: written once this batch's history is.
        const done = snapshot(tally)
        // a replayed activation too: the process that first recorded it may have died before mirroring it
        const mirrored = this.#deps.historyTopic ? [...outcome.replayed, ...outcome.activations] : []
        history.whenDurable(async () => {
          if (leaseLost) return // another process carries the run on: its progress stands
          if (mirrored.length) await this.#publishMirror(mirrored)
          await this.runs.progress(run.id, done)
          this.#gauges?.done.set({ campaign: name }, done.rowsDone)
          run = { ...run, ...done }
          this.onProgress?.(run)
        })
        if (leaseLost) throw riffleError('RIFFLE_CONFLICT', 'the run lost its lease to another process')
        if (this.#stopping) {
          await history.settle()
          log.info({ rowsDone: tally.rowsDone }, 'stopping: the run resumes from here later')
          await this.runs.releaseLease(name, run.id, this.#owner)
          return await this.runs.get(run.id)
        }
      }
      await history.settle()
      const status = tally.errors.length ? 'failed' : 'succeeded'
      await this.runs.finish(
        run.id,
        status,
        this.#now(),
        tally.errors,
        status === 'failed' ? 'finished with errors' : null,
      )
      log.info({ status, rows: tally.rowsDone }, 'run ended')
    } catch (e) {
      const msg = isRiffleError(e) ? e.message : (e as Error).message.split('\n')[0]!
      if (leaseLost) {
        log.warn('the run lost its lease; another process carries on')
        return await this.runs.get(run.id)
      }
      // what is durable is recorded; a batch whose history did not commit is not counted
      await history.settle().catch(() => {})
      await this.runs.finish(run.id, 'failed', this.#now(), [...tally.errors, msg].slice(-MAX_ERRORS), msg)
      log.warn({ err: msg }, 'run failed')
    } finally {
      clearInterval(renew)
      await this.runs.releaseLease(name, run.id, this.#owner).catch(() => {})
    }
    return await this.runs.get(run.id)
  }

  async #publishMirror(batch: Activation[]): Promise<void> {
    const topic = this.#deps.historyTopic!
    const brokers = this.#deps.brokers
    if (!brokers)
      throw riffleError('RIFFLE_KAFKA_UNAVAILABLE', `no Kafka brokers for the history mirror "${topic}"`)
    if (!this.#mirror) {
      const made = brokers().then(
        (b) => new HistoryMirror({ brokers: b, topic, clientId: `${this.#owner}-history-mirror` }),
      )
      made.catch(() => {
        if (this.#mirror === made) this.#mirror = undefined // asked again next time
      })
      this.#mirror = made
    }
    await (await this.#mirror).publish(batch)
  }

  async #produce(
    records: Array<{ topic: string; key: string; value: string; headers: Record<string, string> }>,
  ) {
    if (!this.#deps.brokers)
      throw riffleError('RIFFLE_KAFKA_UNAVAILABLE', 'no Kafka brokers for a Kafka output')
    const brokers = this.#deps.brokers
    // one send at a time (see SerialProducer): runs of several campaigns share it
    this.#producer ??= new SerialProducer(
      async () =>
        new Producer({
          clientId: `${this.#owner}-scheduler`,
          bootstrapBrokers: await brokers(),
          idempotent: true,
          producerId: -1n,
          producerEpoch: -1,
          acks: -1,
          autocreateTopics: true,
          retries: 3,
        }),
    )
    await this.#producer.send(
      records.map((r) => ({
        topic: r.topic,
        key: Buffer.from(r.key),
        value: Buffer.from(r.value),
        headers: new Map(Object.entries(r.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])),
      })),
    )
  }
}

function snapshot(t: Tally): Tally {
  return {
    ...t,
    activations: { ...t.activations },
    outputs: { ...t.outputs },
    errors: [...t.errors],
  }
}

function addError(t: Tally, msg: string): void {
  if (t.errors.length < MAX_ERRORS && !t.errors.includes(msg)) t.errors.push(msg)
}

function checkColumns(columns: ColumnInfo[], keyColumn: string, campaign: string): void {
  if (!columns.some((c) => c.name === keyColumn))
    throw riffleError(
      'RIFFLE_BAD_REQUEST',
      `the audience of campaign "${campaign}" has no key column "${keyColumn}" (its columns: ${columns.map((c) => c.name).join(', ') || 'none'}); select it, or set audience.key`,
    )
}

/** `row` values as CEL sees them: integers as int (BigInt), numbers as double, times as timestamps. */
function converter(columns: ColumnInfo[]): (raw: Record<string, unknown>) => Record<string, unknown> {
  const ints = columns.filter((c) => c.kind === 'integer').map((c) => c.name)
  const nums = columns.filter((c) => c.kind === 'number').map((c) => c.name)
  return (raw) => {
    for (const n of ints) {
      const v = raw[n]
      if (typeof v === 'number') raw[n] = BigInt(v)
    }
    for (const n of nums) {
      const v = raw[n]
      if (typeof v === 'bigint') raw[n] = Number(v)
    }
    return raw
  }
}

function plainKey(v: unknown): string | number {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()
  if (typeof v === 'number') return v
  if (v instanceof Date) return v.toISOString()
  return String(v)
}

function literal(v: string | number): string {
  return typeof v === 'number' ? String(v) : `'${v.replace(/'/g, "''")}'`
}

/** Checks a scheduled campaign's trigger (cron and time zone), naming the problem. */
export function checkTrigger(c: Campaign): void {
  if ('schedule' in c.trigger) parseSchedule(c.trigger.schedule, c.trigger.timezone)
}
