/**
 * The embedded pull store: one SQLite file (`<dataDir>/pull.db`, WAL), one table per collection,
 * the record's fields as one JSON object. better-sqlite3 is synchronous, so a whole batch runs in
 * one transaction without yielding: all-or-nothing and fast.
 *
 * Reads: a statement outside a transaction takes and releases SQLite's file locks (four fcntl
 * calls, about half the cost of a lookup). So the point reads (`get`, `getJson`) that arrive in one
 * turn of the event loop are run together, at its end (setImmediate), in one read transaction;
 * `getMany` runs in one read transaction too. Each read still sees every write committed before it
 * was asked for (writes are synchronous and complete before the reads run).
 */

import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { checkpointInBackground, release } from '../db/checkpointer.js'
import { CONNECTION_PRAGMAS } from '../db/pragmas.js'
import Sqlite from '../db/sqlite-driver.js'
import type { Collection } from '../definitions/schema.js'
import { riffleError } from '../errors.js'
import type { PullRecord, PullRecordJson, PullStore, PullWrite, ScanPage } from './store.js'
import {
  type CheckedWrite,
  checkWrites,
  compileCollection,
  expiredBefore,
  type PullCollection,
  pickFields,
  unknownCollection,
} from './values.js'

interface Row {
  key: string
  fields: string
  updated_at: number
  writer: string
  event_time: number | null
}

const NO_CUTOFF = Number.MIN_SAFE_INTEGER
const PURGE_EVERY_MS = 60_000

export function tableName(collection: string): string {
  return `pull_${collection}`
}

function quote(ident: string): string {
  return `"${ident.replace(/"/g, '""')}"`
}

/** A point read waiting for the end of this turn of the event loop. */
interface PendingRead {
  t: Table
  key: string
  /** undefined: a PullRecord (all fields); an array: those fields; null: getJson. */
  fields: string[] | undefined | null
  resolve(r: PullRecord | PullRecordJson | undefined): void
  reject(e: unknown): void
}

class Table {
  readonly get: Sqlite.Statement<[string, number], Row>
  /** fields, updated_at: for getJson, as an array (no row object to build). */
  readonly getJson: Sqlite.Statement<[string, number], [string, number]>
  readonly scan: Sqlite.Statement<[string, number, number], Row>
  readonly upsert: Sqlite.Statement
  readonly upsertReplacingObjects: Sqlite.Statement
  readonly remove: Sqlite.Statement
  readonly purge: Sqlite.Statement<[number]>
  /** Fields of type object: json_patch would merge them deeply, but a set replaces them. */
  readonly objectFields: ReadonlySet<string>

  constructor(
    db: Sqlite.Database,
    readonly c: PullCollection,
  ) {
    const t = quote(tableName(c.name))
    db.exec(`create table if not exists ${t} (
      key text primary key,
      fields text not null,
      updated_at integer not null,
      writer text not null,
      event_time integer
    ) without rowid`)
    db.exec(`create index if not exists ${quote(`${tableName(c.name)}_updated_at`)} on ${t} (updated_at)`)
    this.get = db.prepare(
      `select key, fields, updated_at, writer, event_time from ${t} where key = ? and updated_at > ?`,
    )
    this.getJson = db
      .prepare<[string, number], [string, number]>(
        `select fields, updated_at from ${t} where key = ? and updated_at > ?`,
      )
      .raw(true)
    this.scan = db.prepare(
      `select key, fields, updated_at, writer, event_time from ${t} where key > ? and updated_at > ? order by key limit ?`,
    )
    // One statement per record: insert, or merge into the stored fields; an expired record starts
    // afresh; with onlyIfNewer, a stored later event time makes the update a no-op (changes = 0).
    const upsert = (merged: string) => `insert into ${t} (key, fields, updated_at, writer, event_time)
      values (@key, @fields, @now, @writer, @et)
      on conflict (key) do update set
        fields = case when updated_at <= @cutoff then @fields else ${merged} end,
        event_time = coalesce(@et, case when updated_at <= @cutoff then null else event_time end),
        updated_at = @now,
        writer = @writer
      where @cond = 0 or updated_at <= @cutoff or event_time is null or event_time <= @et`
    this.upsert = db.prepare(upsert('json_patch(fields, @patch)'))
    this.upsertReplacingObjects = db.prepare(upsert('json_patch(json_patch(fields, @nullify), @patch)'))
    this.remove = db.prepare(
      `delete from ${t} where key = @key and (@cond = 0 or event_time is null or event_time <= @et or updated_at <= @cutoff)`,
    )
    this.purge = db.prepare(`delete from ${t} where updated_at <= ?`)
    this.objectFields = new Set([...c.fields].filter(([, type]) => type === 'object').map(([n]) => n))
  }
}

function toRecord(r: Row, fields?: string[]): PullRecord {
  const rec: PullRecord = {
    key: r.key,
    fields: pickFields(JSON.parse(r.fields) as Record<string, unknown>, fields),
    updatedAt: new Date(r.updated_at).toISOString(),
    writer: r.writer,
  }
  if (r.event_time !== null) rec.eventTime = r.event_time
  return rec
}

export class SqlitePullStore implements PullStore {
  readonly kind = 'sqlite'
  readonly description: string
  readonly #db: Sqlite.Database
  readonly #file: string
  #tables = new Map<string, Table>()
  #purgeTimer: NodeJS.Timeout | undefined
  readonly #begin: Sqlite.Statement
  readonly #commit: Sqlite.Statement
  readonly #rollback: Sqlite.Statement
  #pending: PendingRead[] = []
  #flushing = false

  constructor(file: string) {
    this.description = `sqlite:${file}`
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true })
    try {
      this.#db = new Sqlite(file)
    } catch (e) {
      throw riffleError('RIFFLE_STORE_UNAVAILABLE', `cannot open the pull store ${file}: ${String(e)}`, {
        cause: e,
      })
    }
    for (const p of CONNECTION_PRAGMAS) this.#db.pragma(p)
    // Lookups are the hot path: keep pages in memory (64 MiB cache, reads through mmap) rather
    // than a read() system call per page.
    this.#db.pragma('cache_size = -65536')
    this.#db.pragma('mmap_size = 1073741824')
    this.#file = file
    checkpointInBackground(file)
    this.#begin = this.#db.prepare('begin')
    this.#commit = this.#db.prepare('commit')
    this.#rollback = this.#db.prepare('rollback')
    this.#purgeTimer = setInterval(() => this.purgeExpired(), PURGE_EVERY_MS)
    this.#purgeTimer.unref()
  }

  /**
   * Runs `fn` in one read transaction when that saves lock calls (`n` reads, not inside another
   * transaction); otherwise each statement takes its own. Synchronous: no write can come between.
   */
  #reading<T>(n: number, fn: () => T): T {
    if (n < 2 || this.#db.inTransaction) return fn()
    try {
      this.#begin.run()
    } catch {
      return fn()
    }
    try {
      return fn()
    } finally {
      try {
        this.#commit.run()
      } catch {
        if (this.#db.inTransaction) this.#rollback.run()
      }
    }
  }

  #enqueue<T extends PullRecord | PullRecordJson>(
    t: Table,
    key: string,
    fields: string[] | undefined | null,
  ): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      this.#pending.push({ t, key, fields, resolve: resolve as PendingRead['resolve'], reject })
      if (!this.#flushing) {
        this.#flushing = true
        setImmediate(this.#flush)
      }
    })
  }

  /** Runs the point reads queued in this turn of the event loop, in one read transaction. */
  readonly #flush = (): void => {
    const batch = this.#pending
    this.#pending = []
    this.#flushing = false
    const now = Date.now()
    const run = () => {
      for (const p of batch) {
        try {
          const cutoff = p.t.c.ttlMs === undefined ? NO_CUTOFF : expiredBefore(p.t.c, now)
          if (p.fields === null) {
            const row = p.t.getJson.get(p.key, cutoff)
            p.resolve(row ? { key: p.key, updatedAt: row[1], fieldsJson: row[0] } : undefined)
          } else {
            const row = p.t.get.get(p.key, cutoff)
            p.resolve(row ? toRecord(row, p.fields) : undefined)
          }
        } catch (e) {
          p.reject(e)
        }
      }
    }
    this.#reading(batch.length, run)
  }

  #table(collection: string): Table {
    const t = this.#tables.get(collection)
    if (!t) throw unknownCollection(collection)
    return t
  }

  async prepare(collections: Collection[]): Promise<void> {
    const next = new Map<string, Table>()
    this.#db.transaction(() => {
      for (const c of collections) next.set(c.name, new Table(this.#db, compileCollection(c)))
    })()
    this.#tables = next
  }

  async get(collection: string, key: string, fields?: string[]): Promise<PullRecord | undefined> {
    return this.#enqueue<PullRecord>(this.#table(collection), key, fields)
  }

  async getJson(collection: string, key: string): Promise<PullRecordJson | undefined> {
    return this.#enqueue<PullRecordJson>(this.#table(collection), key, null)
  }

  async getMany(collection: string, keys: string[]): Promise<Array<PullRecord | undefined>> {
    const t = this.#table(collection)
    const cutoff = t.c.ttlMs === undefined ? NO_CUTOFF : expiredBefore(t.c)
    const out = new Array<PullRecord | undefined>(keys.length)
    this.#reading(keys.length, () => {
      for (let i = 0; i < keys.length; i++) {
        const row = t.get.get(keys[i]!, cutoff)
        out[i] = row ? toRecord(row) : undefined
      }
    })
    return out
  }

  async write(collection: string, writes: PullWrite[]): Promise<{ applied: number; skipped: number }> {
    const t = this.#table(collection)
    const checked = checkWrites(t.c, writes)
    const now = Date.now()
    const cutoff = t.c.ttlMs === undefined ? NO_CUTOFF : expiredBefore(t.c, now)
    let applied = 0
    this.#db.transaction(() => {
      for (const w of checked) applied += this.#apply(t, w, now, cutoff)
    })()
    return { applied, skipped: checked.length - applied }
  }

  #apply(t: Table, w: CheckedWrite, now: number, cutoff: number): number {
    const cond = w.onlyIfNewer ? 1 : 0
    const et = w.eventTime ?? null
    if (w.delete) return t.remove.run({ key: w.key, cond, et, cutoff }).changes
    const fields = JSON.stringify(w.set)
    let patch = fields
    if (w.unset.length) {
      const p: Record<string, unknown> = { ...w.set }
      for (const f of w.unset) p[f] = null
      patch = JSON.stringify(p)
    }
    const params = { key: w.key, fields, patch, now, writer: w.writer, et, cond, cutoff }
    if (t.objectFields.size > 0) {
      const objects = w.setNames.filter((f) => t.objectFields.has(f))
      if (objects.length) {
        const nullify = JSON.stringify(Object.fromEntries(objects.map((f) => [f, null])))
        return t.upsertReplacingObjects.run({ ...params, nullify }).changes
      }
    }
    return t.upsert.run(params).changes
  }

  async scan(collection: string, opts: { after?: string; limit: number }): Promise<ScanPage> {
    const t = this.#table(collection)
    const cutoff = t.c.ttlMs === undefined ? NO_CUTOFF : expiredBefore(t.c)
    const rows = t.scan.all(opts.after ?? '', cutoff, opts.limit + 1)
    const more = rows.length > opts.limit
    const records = (more ? rows.slice(0, opts.limit) : rows).map((r) => toRecord(r))
    return { records, next: more ? records[records.length - 1]!.key : undefined }
  }

  /** Deletes expired records (reads already hide them; this reclaims the space). */
  purgeExpired(now = Date.now()): number {
    let n = 0
    for (const t of this.#tables.values())
      if (t.c.ttlMs !== undefined) n += t.purge.run(expiredBefore(t.c, now)).changes
    return n
  }

  async ping(): Promise<void> {
    this.#db.prepare('select 1').get()
  }

  async close(): Promise<void> {
    clearInterval(this.#purgeTimer)
    if (this.#db.open) {
      release(this.#file)
      this.#db.close()
    }
  }
}
