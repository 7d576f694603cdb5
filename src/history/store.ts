/**
 * The output history: every activation, holdout included, kept durably for loading into master
 * data stores. Appends are batched and idempotent on the activation id; `seq` orders records by
 * insertion so that export consumers can keep a watermark.
 *
 * On PostgreSQL every append takes one transaction-scoped advisory lock, so that sequence numbers
 * become visible in order: a reader that sees seq N sees every committed seq below N, which is what
 * makes a watermark safe with many engine processes appending at once.
 */
import type Sqlite from 'better-sqlite3'
import { type SqlDatabase, SqliteDatabase } from '../db/sql.js'
import { riffleError } from '../errors.js'
import type { Activation, ActivationStatus } from './activation.js'
import { APPEND_PRAGMAS, activationParams, INSERT_COLUMNS, sqliteAppender } from './append.js'
import { BackgroundAppender } from './background.js'
import { CustomerIndex } from './customers.js'
import { type Cursor, decodeCursor, encodeCursor, type HistoryFilter } from './query.js'
import {
  COLUMNS,
  entryFromRow,
  HISTORY_MIGRATIONS,
  type HistoryEntry,
  type HistoryRow,
  type RawRow,
} from './schema.js'

export type { HistoryFilter } from './query.js'
export type { HistoryEntry, HistoryRow, RawRow } from './schema.js'

/** Names an export consumer; also part of its files' names. */
export const CONSUMER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/

const APPEND_LOCK = 1380533830 // any constant: every appender takes the same advisory lock
const SELECT_COLUMNS = COLUMNS.join(', ')
export const MAX_PAGE = 1000

export interface HistoryPage {
  items: HistoryEntry[]
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null
}

export interface CountRecentQuery {
  customerKeys: readonly string[]
  /** Count one campaign's activations; omit to count every campaign's. */
  campaign?: string
  /** Epoch milliseconds, inclusive, on the output time. */
  since: number
  /** Which statuses count; default `sent`. */
  statuses?: readonly ActivationStatus[]
}

/** A registered export consumer and how far it has taken the history. */
export interface ExportConsumer {
  name: string
  /** Every record with seq ≤ watermark has been exported to this consumer. */
  watermark: number
  /** An export that started and has not been confirmed: it covers (watermark, pendingTo]. */
  pendingTo: number | null
  createdAt: number
  lastExportAt: number | null
  /** Records exported so far. */
  exported: number
}

interface ConsumerRow {
  name: string
  watermark: number
  pending_to: number | null
  created_at: number
  last_export_at: number | null
  exported: number
}

function consumerFromRow(r: ConsumerRow): ExportConsumer {
  return {
    name: r.name,
    watermark: Number(r.watermark),
    pendingTo: r.pending_to === null ? null : Number(r.pending_to),
    createdAt: Number(r.created_at),
    lastExportAt: r.last_export_at === null ? null : Number(r.last_export_at),
    exported: Number(r.exported),
  }
}

/** A range of seq numbers to read in insertion order, with optional filters. */
export interface ScanRange {
  /** Exclusive. */
  afterSeq: number
  /** Inclusive. */
  toSeq?: number
  campaign?: string
  since?: number
  until?: number
}

export interface PurgeResult {
  /** Records deleted. */
  purged: number
  /** Records older than the cutoff that some consumer has not exported yet, so kept. */
  blocked: number
  /** The consumers holding back those records. */
  blockedBy: string[]
}

function unknownConsumer(name: string) {
  return riffleError(
    'RIFFLE_UNKNOWN_CONSUMER',
    `export consumer "${name}" is not registered; register it with \`riffle history consumers add ${name}\` (or pass --register)`,
  )
}

function checkConsumerName(name: string): void {
  if (!CONSUMER_PATTERN.test(name))
    throw riffleError(
      'RIFFLE_BAD_REQUEST',
      `consumer "${name}": a name is letters, digits, "-" and "_", starting with a letter or digit`,
    )
}

/**
 * The WHERE clauses of a history query: filters and the page cursor. `withCustomer` is false when
 * the customer key is matched by the per-customer index instead.
 */
function filterClauses(
  filter: HistoryFilter,
  cursor: string | undefined,
  withCustomer: boolean,
): { where: string[]; params: unknown[] } {
  const where: string[] = []
  const params: unknown[] = []
  const add = (clause: string, ...values: unknown[]) => {
    where.push(clause)
    params.push(...values)
  }
  if (withCustomer && filter.customerKey !== undefined) add('customer_key = ?', filter.customerKey)
  if (filter.campaign !== undefined) add('campaign = ?', filter.campaign)
  if (filter.since !== undefined) add('output_time >= ?', filter.since)
  if (filter.until !== undefined) add('output_time < ?', filter.until)
  if (filter.statuses?.length)
    add(`status in (${filter.statuses.map(() => '?').join(', ')})`, ...filter.statuses)
  if (cursor !== undefined && cursor !== '') {
    const c: Cursor = decodeCursor(cursor)
    add('(output_time, seq) < (?, ?)', c.outputTime, c.seq)
  }
  return { where, params }
}

export class HistoryStore {
  readonly #db: SqlDatabase
  readonly #sqlite: SqliteDatabase | undefined
  /** SQLite: the derived per-customer index (customers.ts). */
  readonly #customers: CustomerIndex | undefined
  #sqliteAppend: ((batch: readonly Activation[]) => number) | undefined
  #background: BackgroundAppender | undefined

  private constructor(db: SqlDatabase, customers: CustomerIndex | undefined) {
    this.#db = db
    this.#sqlite = db instanceof SqliteDatabase ? db : undefined
    this.#customers = customers
  }

  /** Opens the history in `db`, creating its tables on first use. Close it before `db`. */
  static async open(db: SqlDatabase): Promise<HistoryStore> {
    await db.migrate('history', HISTORY_MIGRATIONS)
    const customers =
      db instanceof SqliteDatabase
        ? await db.withHandle((h) => {
            for (const p of APPEND_PRAGMAS) h.pragma(p)
            return CustomerIndex.open(h)
          })
        : undefined
    return new HistoryStore(db, customers)
  }

  /**
   * Stops the background appender (after its appends in flight) and the SQLite customer indexer
   * (its work is never lost: the next process resumes it).
   */
  async close(): Promise<void> {
    const background = this.#background
    this.#background = undefined
    await background?.close()
    await this.#customers?.close()
  }

  /** Calls `fn` when the SQLite customer indexer fails (it restarts on a later append). */
  onIndexerError(fn: (e: unknown) => void): void {
    if (this.#customers) this.#customers.onError = fn
  }

  /** Resolves once the per-customer index holds every record appended so far (tests, benchmarks). */
  async indexSettled(timeoutMs?: number): Promise<void> {
    await this.#customers?.settled(timeoutMs)
  }

  get db(): SqlDatabase {
    return this.#db
  }

  /**
   * Appends a batch in one transaction. Idempotent on the activation id: a record already there
   * (a replay) is left as it was. Returns how many records were new.
   */
  async append(batch: readonly Activation[]): Promise<{ appended: number }> {
    if (batch.length === 0) return { appended: 0 }
    if (this.#sqlite) {
      const appended = await this.#sqlite.withHandle((h) => {
        const n = this.#sqliteAppender(h)(batch)
        this.#customers?.appended()
        return n
      })
      return { appended }
    }
    const cols: unknown[][] = INSERT_COLUMNS.map(() => new Array(batch.length))
    for (let i = 0; i < batch.length; i++) {
      const p = activationParams(batch[i]!)
      for (let c = 0; c < p.length; c++) cols[c]![i] = p[c]
    }
    const types = [
      'text',
      'text',
      'int',
      'text',
      'text',
      'text',
      'int',
      'text',
      'text',
      'text',
      'bigint',
      'bigint',
      'text',
      'text',
      'text',
    ]
    const appended = await this.#db.transaction(async (tx) => {
      await tx.run('select pg_advisory_xact_lock(?)', [APPEND_LOCK])
      const r = await tx.run(
        `insert into history_activations (${INSERT_COLUMNS.join(', ')}) select * from unnest(${types.map((t) => `?::${t}[]`).join(', ')}) on conflict (id) do nothing`,
        cols,
      )
      return r.changes
    })
    return { appended }
  }

  #sqliteAppender(h: Sqlite.Database): (batch: readonly Activation[]) => number {
    if (!this.#sqliteAppend) {
      const append = sqliteAppender(h)
      this.#sqliteAppend = (batch) => append(batch.map(activationParams))
    }
    return this.#sqliteAppend
  }

  /**
   * Appends like `append`, with the same guarantee once the promise resolves, but on SQLite the
   * insert runs on a worker thread (background.ts): the calling thread is free meanwhile. For a
   * caller that overlaps its next piece of work with the write (the scheduler's pipeline).
   */
  async appendInBackground(batch: readonly Activation[]): Promise<{ appended: number }> {
    const file = this.#sqlite?.file
    if (batch.length === 0 || !file || file === ':memory:' || !this.#customers) return this.append(batch)
    this.#background ??= new BackgroundAppender(file)
    const appended = await this.#background.append(batch)
    this.#customers.appended()
    return { appended }
  }

  /**
   * How many activations each customer key had since `since` (default: `sent` ones), for one
   * campaign or all. One query for the whole batch of keys; every key asked for is in the result.
   */
  async countRecent(q: CountRecentQuery): Promise<Map<string, number>> {
    const counts = new Map<string, number>()
    for (const k of q.customerKeys) counts.set(k, 0)
    if (counts.size === 0) return counts
    const statuses = q.statuses ?? ['sent']
    if (statuses.length === 0) return counts
    const keys = [...counts.keys()]
    const add = (rows: Array<{ k: string; n: number }>) => {
      for (const r of rows) counts.set(r.k, (counts.get(r.k) ?? 0) + Number(r.n))
    }
    const statusIn = `status in (${statuses.map(() => '?').join(', ')})`
    const campaign = q.campaign !== undefined ? ' and campaign = ?' : ''
    const tailParams = [q.since, ...statuses, ...(q.campaign !== undefined ? [q.campaign] : [])]
    if (this.#customers) {
      // the index up to its watermark, then the history table's records after it
      const c = this.#customers
      const upTo = c.indexedTo()
      const json = JSON.stringify(keys)
      add(
        c.reader
          .prepare(
            `select customer_key as k, count(*) as n from ${c.schema}.history_customers where customer_key in (select value from json_each(?)) and seq <= ? and output_time >= ? and ${statusIn}${campaign} group by customer_key`,
          )
          .all(json, upTo, ...tailParams) as Array<{ k: string; n: number }>,
      )
      add(
        await this.#db.all<{ k: string; n: number }>(
          `select customer_key as k, count(*) as n from history_activations not indexed where seq > ? and customer_key in (select value from json_each(?)) and output_time >= ? and ${statusIn}${campaign} group by customer_key`,
          [upTo, json, ...tailParams],
        ),
      )
      return counts
    }
    add(
      await this.#db.all<{ k: string; n: number }>(
        `select customer_key as k, count(*) as n from history_activations where customer_key = any(?::text[]) and output_time >= ? and ${statusIn}${campaign} group by customer_key`,
        [keys, ...tailParams],
      ),
    )
    return counts
  }

  /** Records matching the filter, newest first (by output time, then seq), one page at a time. */
  async list(filter: HistoryFilter, page: { cursor?: string; limit?: number } = {}): Promise<HistoryPage> {
    const limit = Math.min(Math.max(1, Math.trunc(page.limit ?? 100)), MAX_PAGE)
    if (this.#customers && filter.customerKey !== undefined) return this.#listCustomer(filter, page, limit)
    const { where, params } = filterClauses(filter, page.cursor, true)
    params.push(limit + 1)
    const rows = await this.#db.all<HistoryRow>(
      `select ${SELECT_COLUMNS} from history_activations${where.length ? ` where ${where.join(' and ')}` : ''} order by output_time desc, seq desc limit ?`,
      params,
    )
    const more = rows.length > limit
    const items = (more ? rows.slice(0, limit) : rows).map(entryFromRow)
    const last = items[items.length - 1]
    return {
      items,
      nextCursor: more && last ? encodeCursor({ outputTime: last.outputTime, seq: last.seq }) : null,
    }
  }

  /**
   * SQLite, one customer: the page's keys come from the index up to its watermark and from the
   * history table after it; then the records themselves are read by seq.
   */
  async #listCustomer(filter: HistoryFilter, page: { cursor?: string }, limit: number): Promise<HistoryPage> {
    const c = this.#customers!
    const { where, params } = filterClauses(filter, page.cursor, false)
    const more = where.length ? ` and ${where.join(' and ')}` : ''
    const order = 'order by output_time desc, seq desc limit ?'
    const upTo = c.indexedTo()
    const indexed = c.reader
      .prepare(
        `select output_time, seq from ${c.schema}.history_customers where customer_key = ? and seq <= ?${more} ${order}`,
      )
      .all(filter.customerKey, upTo, ...params, limit + 1) as Array<{ output_time: number; seq: number }>
    const tail = await this.#db.all<HistoryRow>(
      `select ${SELECT_COLUMNS} from history_activations not indexed where seq > ? and customer_key = ?${more} ${order}`,
      [upTo, filter.customerKey, ...params, limit + 1],
    )
    const keys: Array<{ t: number; seq: number; row?: HistoryRow }> = [
      ...indexed.map((r) => ({ t: Number(r.output_time), seq: Number(r.seq) })),
      ...tail.map((r) => ({ t: Number(r.output_time), seq: Number(r.seq), row: r })),
    ].sort((a, b) => b.t - a.t || b.seq - a.seq)
    const hasMore = keys.length > limit
    const pageKeys = keys.slice(0, limit)
    const wanted = pageKeys.filter((k) => !k.row).map((k) => k.seq)
    const fetched = new Map<number, HistoryRow>()
    if (wanted.length) {
      for (const r of await this.#db.all<HistoryRow>(
        `select ${SELECT_COLUMNS} from history_activations where seq in (select value from json_each(?))`,
        [JSON.stringify(wanted)],
      ))
        fetched.set(Number(r.seq), r)
    }
    // an index entry whose record a purge has just removed is skipped; the cursor still moves past it
    const items = pageKeys.flatMap((k) => {
      const row = k.row ?? fetched.get(k.seq)
      return row ? [entryFromRow(row)] : []
    })
    const last = pageKeys[pageKeys.length - 1]
    return {
      items,
      nextCursor: hasMore && last ? encodeCursor({ outputTime: last.t, seq: last.seq }) : null,
    }
  }

  /** One record by its activation id. */
  async get(id: string): Promise<HistoryEntry | undefined> {
    const row = await this.#db.get<HistoryRow>(
      `select ${SELECT_COLUMNS} from history_activations where id = ?`,
      [id],
    )
    return row ? entryFromRow(row) : undefined
  }

  /**
   * The records among these activation ids that are already there, in one query. The engine
   * asks this for every batch: a replayed activation keeps its recorded decision.
   */
  async getMany(ids: readonly string[]): Promise<Map<string, HistoryEntry>> {
    const out = new Map<string, HistoryEntry>()
    if (ids.length === 0) return out
    const unique = [...new Set(ids)]
    const match =
      this.#db.dialect === 'postgres' ? 'id = any(?::text[])' : 'id in (select value from json_each(?))'
    const rows = await this.#db.all<HistoryRow>(
      `select ${SELECT_COLUMNS} from history_activations where ${match}`,
      [this.#db.dialect === 'postgres' ? unique : JSON.stringify(unique)],
    )
    for (const r of rows) out.set(r.id, entryFromRow(r))
    return out
  }

  /** The highest seq appended so far (0 when empty). */
  async maxSeq(): Promise<number> {
    const r = await this.#db.get<{ m: number | null }>('select max(seq) as m from history_activations')
    return r?.m == null ? 0 : Number(r.m)
  }

  /** Narrows a scan by time to the seq numbers that range holds, so the scan reads no more than it must. */
  async #bounds(range: ScanRange): Promise<ScanRange | undefined> {
    if (range.since === undefined && range.until === undefined) return range
    const where: string[] = []
    const params: unknown[] = []
    if (range.since !== undefined) {
      where.push('output_time >= ?')
      params.push(range.since)
    }
    if (range.until !== undefined) {
      where.push('output_time < ?')
      params.push(range.until)
    }
    const b = await this.#db.get<{ lo: number | null; hi: number | null }>(
      `select min(seq) as lo, max(seq) as hi from history_activations where ${where.join(' and ')}`,
      params,
    )
    if (b?.lo == null || b.hi == null) return undefined
    return {
      ...range,
      afterSeq: Math.max(range.afterSeq, Number(b.lo) - 1),
      toSeq: Math.min(range.toSeq ?? Number.MAX_SAFE_INTEGER, Number(b.hi)),
    }
  }

  #scanWhere(range: ScanRange): { where: string; params: unknown[] } {
    const where = ['seq > ?']
    const params: unknown[] = [range.afterSeq]
    if (range.toSeq !== undefined) {
      where.push('seq <= ?')
      params.push(range.toSeq)
    }
    if (range.campaign !== undefined) {
      where.push('campaign = ?')
      params.push(range.campaign)
    }
    if (range.since !== undefined) {
      where.push('output_time >= ?')
      params.push(range.since)
    }
    if (range.until !== undefined) {
      where.push('output_time < ?')
      params.push(range.until)
    }
    return { where: where.join(' and '), params }
  }

  // SQLite: read in rowid order; an index on campaign or time would make every page sort its range.
  get #table(): string {
    return this.#db.dialect === 'sqlite' ? 'history_activations not indexed' : 'history_activations'
  }

  /** How many records a scan would return. */
  async count(range: ScanRange): Promise<number> {
    const r = await this.#bounds(range)
    if (!r) return 0
    const { where, params } = this.#scanWhere(r)
    const row = await this.#db.get<{ n: number }>(
      `select count(*) as n from ${this.#table} where ${where}`,
      params,
    )
    return Number(row?.n ?? 0)
  }

  /**
   * Reads a range in insertion order, `chunk` rows at a time, as arrays in `COLUMNS` order: memory
   * stays bounded by one chunk whatever the range holds, and no object is made per row.
   */
  async *scan(range: ScanRange, chunk = 2_000): AsyncGenerator<RawRow[]> {
    const r = await this.#bounds(range)
    if (!r) return
    let after = r.afterSeq
    for (;;) {
      const { where, params } = this.#scanWhere({ ...r, afterSeq: after })
      const sql = `select ${SELECT_COLUMNS} from ${this.#table} where ${where} order by seq limit ?`
      const rows: RawRow[] = this.#sqlite
        ? await this.#sqlite.withHandle(
            (h) =>
              h
                .prepare(sql)
                .raw(true)
                .all(...params, chunk) as RawRow[],
          )
        : (await this.#db.all<HistoryRow>(sql, [...params, chunk])).map(
            (o) => COLUMNS.map((c) => o[c]) as RawRow,
          )
      if (rows.length === 0) return
      yield rows
      if (rows.length < chunk) return
      after = Number(rows[rows.length - 1]![0])
    }
  }

  /** The seq of the `n`th record after `afterSeq`, or the last one when fewer follow. */
  async seqAfter(afterSeq: number, n: number): Promise<number> {
    const r = await this.#db.get<{ s: number | null }>(
      `select max(seq) as s from (select seq from history_activations where seq > ? order by seq limit ?) t`,
      [afterSeq, n],
    )
    return r?.s == null ? afterSeq : Number(r.s)
  }

  // --- export consumers ---

  async listConsumers(): Promise<ExportConsumer[]> {
    const rows = await this.#db.all<ConsumerRow>('select * from history_consumers order by name')
    return rows.map(consumerFromRow)
  }

  async getConsumer(name: string): Promise<ExportConsumer | undefined> {
    const r = await this.#db.get<ConsumerRow>('select * from history_consumers where name = ?', [name])
    return r ? consumerFromRow(r) : undefined
  }

  /** The consumer, or RIFFLE_UNKNOWN_CONSUMER with how to register it. */
  async requireConsumer(name: string): Promise<ExportConsumer> {
    const c = await this.getConsumer(name)
    if (!c) throw unknownConsumer(name)
    return c
  }

  /**
   * Registers an export consumer. It starts from the oldest record kept, or with `fromNow` after the
   * newest one. Until it has exported them, retention keeps the records it has not taken.
   */
  async addConsumer(name: string, opts: { fromNow?: boolean } = {}): Promise<ExportConsumer> {
    checkConsumerName(name)
    return this.#db.transaction(async (tx) => {
      const exists = await tx.get('select name from history_consumers where name = ?', [name])
      if (exists) throw riffleError('RIFFLE_CONFLICT', `export consumer "${name}" is already registered`)
      let watermark = 0
      if (opts.fromNow) {
        const r = await tx.get<{ m: number | null }>('select max(seq) as m from history_activations')
        watermark = r?.m == null ? 0 : Number(r.m)
      }
      await tx.run('insert into history_consumers (name, watermark, created_at) values (?, ?, ?)', [
        name,
        watermark,
        Date.now(),
      ])
      return (await this.#consumerIn(tx, name))!
    })
  }

  async #consumerIn(tx: SqlDatabase, name: string): Promise<ExportConsumer | undefined> {
    const r = await tx.get<ConsumerRow>('select * from history_consumers where name = ?', [name])
    return r ? consumerFromRow(r) : undefined
  }

  /** Removes a consumer: retention no longer waits for it. */
  async removeConsumer(name: string): Promise<void> {
    const r = await this.#db.run('delete from history_consumers where name = ?', [name])
    if (r.changes === 0) throw unknownConsumer(name)
  }

  /**
   * Starts an incremental export: records (watermark, toSeq] as pending, unless an export is pending
   * already (a crashed run), whose range is returned to be exported again, unchanged.
   */
  async beginExport(name: string, toSeq: number): Promise<{ from: number; to: number }> {
    return this.#db.transaction(async (tx) => {
      const c = await this.#consumerIn(tx, name)
      if (!c) throw unknownConsumer(name)
      if (c.pendingTo !== null) return { from: c.watermark, to: c.pendingTo }
      if (toSeq > c.watermark)
        await tx.run('update history_consumers set pending_to = ? where name = ? and watermark = ?', [
          toSeq,
          name,
          c.watermark,
        ])
      return { from: c.watermark, to: Math.max(toSeq, c.watermark) }
    })
  }

  /** Confirms an export of (from, to]: the watermark moves to `to`, in one transaction. */
  async completeExport(name: string, from: number, to: number, records: number): Promise<boolean> {
    const r = await this.#db.run(
      'update history_consumers set watermark = ?, pending_to = null, last_export_at = ?, exported = exported + ? where name = ? and watermark = ? and pending_to = ?',
      [to, Date.now(), records, name, from, to],
    )
    return r.changes === 1
  }

  // --- retention ---

  /**
   * Deletes records whose output time is before `cutoff`, but only those every registered consumer
   * has exported. Deletes in chunks so that appends are never held up for long.
   */
  async purge(cutoff: number, chunk = 10_000): Promise<PurgeResult> {
    let purged = 0
    for (;;) {
      // the consumers' floor is read by the delete itself: a consumer registered meanwhile (from
      // the start) stops the purge at once instead of losing the records it was to begin with
      const r = await this.#db.run(
        `delete from history_activations where seq in (select seq from history_activations where output_time < ? and seq <= (select coalesce(min(watermark), ${Number.MAX_SAFE_INTEGER}) from history_consumers) limit ?)`,
        [cutoff, chunk],
      )
      purged += r.changes
      if (r.changes < chunk) break
    }
    const consumers = await this.listConsumers()
    const floor = consumers.length ? Math.min(...consumers.map((c) => c.watermark)) : Number.MAX_SAFE_INTEGER
    if (this.#customers) {
      await this.#db.run('update history_info set purge_cutoff = ?, purge_floor = ?', [cutoff, floor])
      await this.#sqlite!.withHandle(() => this.#customers!.purged())
    }
    let blocked = 0
    const blockedBy: string[] = []
    if (consumers.length) {
      const b = await this.#db.get<{ n: number; hi: number | null }>(
        'select count(*) as n, max(seq) as hi from history_activations where output_time < ? and seq > ?',
        [cutoff, floor],
      )
      blocked = Number(b?.n ?? 0)
      // a consumer holds records back when the newest record past the cutoff is beyond its watermark
      if (blocked > 0 && b?.hi != null) {
        const hi = Number(b.hi)
        for (const c of consumers) if (c.watermark < hi) blockedBy.push(c.name)
      }
    }
    return { purged, blocked, blockedBy }
  }

  /** Records each consumer has yet to export, for metrics. */
  async consumerLag(): Promise<Map<string, number>> {
    const lag = new Map<string, number>()
    for (const c of await this.listConsumers()) {
      const r = await this.#db.get<{ n: number }>(
        'select count(*) as n from history_activations where seq > ?',
        [c.watermark],
      )
      lag.set(c.name, Number(r?.n ?? 0))
    }
    return lag
  }
}
