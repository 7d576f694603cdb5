/**
 * The MongoDB pull store: one MongoDB collection per pull collection (`pull.<collection>`), one
 * document per record with `_id` = key, the fields at the top level (timestamps as BSON dates) and
 * metadata in `_updatedAt` (date), `_writer` and `_eventTime` (epoch ms).
 *
 * Written for what MongoDB-wire servers have in common, FerretDB 1.x included: no transactions,
 * no pipeline updates, no TTL indexes, and a bulk write of updates that stops at its first error
 * even when unordered (unordered inserts do go on past duplicate keys there). A batch is first tried as unordered inserts of whole documents, one per key (its
 * writes folded in order): the load path, with no read first. A key that exists fails alone with a
 * duplicate-key error and writes nothing; for those keys (and keys with a delete), the batch reads
 * the stored event times and decides per record, sending single-document updates with a filter on
 * the event time against races. Each record's write is one single-document operation, which
 * MongoDB applies atomically.
 */
import {
  type AnyBulkWriteOperation,
  type Db,
  type Document,
  MongoBulkWriteError,
  MongoClient,
  type Collection as MongoCollection,
  MongoNetworkError,
  MongoServerSelectionError,
} from 'mongodb'
import type { Collection } from '../definitions/schema.js'
import { riffleError } from '../errors.js'
import { redactUrl } from './redis.js'
import type { PullRecord, PullStore, PullWrite, ScanPage } from './store.js'
import {
  type CheckedWrite,
  checkWrites,
  compileCollection,
  expiredBefore,
  type PullCollection,
  pickFields,
  unknownCollection,
} from './values.js'

export const COLLECTION_PREFIX = 'pull.'
/** Documents per insertMany command. */
const INSERT_CHUNK = 1000
const SWEEP_EVERY_MS = 60_000

interface PullDoc extends Document {
  _id: string
  _updatedAt: Date
  _writer: string
  _eventTime?: number
}

interface Prepared {
  c: PullCollection
  coll: MongoCollection<PullDoc>
  timestamps: string[]
}

function toRecord(d: PullDoc, cutoff: number, fields?: string[]): PullRecord | undefined {
  const updated = d._updatedAt instanceof Date ? d._updatedAt.getTime() : Number(d._updatedAt)
  if (updated <= cutoff) return undefined
  const out: Record<string, unknown> = {}
  for (const f in d) {
    if (f.charCodeAt(0) === 95 /* _ */) continue
    const v = d[f]
    out[f] = v instanceof Date ? v.toISOString() : v
  }
  const rec: PullRecord = {
    key: d._id,
    fields: pickFields(out, fields),
    updatedAt: new Date(updated).toISOString(),
    writer: d._writer,
  }
  if (typeof d._eventTime === 'number') rec.eventTime = d._eventTime
  return rec
}

/** Whether an error (or what it wraps, as a bulk write's does) means the server cannot be reached. */
function isConnectionError(e: unknown, depth = 0): boolean {
  if (!e || typeof e !== 'object' || depth > 3) return false
  if (e instanceof MongoNetworkError || e instanceof MongoServerSelectionError) return true
  const err = e as {
    name?: string
    code?: unknown
    message?: string
    cause?: unknown
    errorResponse?: unknown
  }
  if (/MongoNetwork|ServerSelection|MongoNotConnected|MongoTopologyClosed|PoolCleared/.test(err.name ?? ''))
    return true
  // A socket closed under a command surfaces as a plain Error.
  if (
    typeof err.code === 'string' &&
    /^(EPIPE|ECONNRESET|ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH)$/.test(err.code)
  )
    return true
  if (/socket has been ended|connection .* closed/i.test(err.message ?? '')) return true
  return isConnectionError(err.cause, depth + 1) || isConnectionError(err.errorResponse, depth + 1)
}

function isTopologyClosed(e: unknown, depth = 0): boolean {
  if (!e || typeof e !== 'object' || depth > 3) return false
  const err = e as { name?: string; cause?: unknown; errorResponse?: unknown }
  if (err.name === 'MongoTopologyClosedError' || err.name === 'MongoNotConnectedError') return true
  return isTopologyClosed(err.cause, depth + 1) || isTopologyClosed(err.errorResponse, depth + 1)
}

export class MongoPullStore implements PullStore {
  readonly kind = 'mongodb'
  readonly description: string
  readonly #client: MongoClient
  readonly #db: Db
  #prepared = new Map<string, Prepared>()
  #sweepTimer: NodeJS.Timeout | undefined
  #reconnecting: Promise<unknown> | undefined
  #closed = false
  /** FerretDB 1.x hangs on an update command of 100 or more operations; MongoDB takes many more. */
  #opsPerCommand = 50

  private constructor(client: MongoClient, db: Db, description: string) {
    this.#client = client
    this.#db = db
    this.description = description
    this.#sweepTimer = setInterval(() => void this.sweep().catch(() => {}), SWEEP_EVERY_MS)
    this.#sweepTimer.unref()
  }

  /** Connects to `mongodb://…/<database>` (default database `riffle`). A server that is down is reported by ping, not here. */
  static async open(url: string): Promise<MongoPullStore> {
    const client = new MongoClient(url, {
      serverSelectionTimeoutMS: 2_000,
      connectTimeoutMS: 2_000,
      maxPoolSize: 20,
      ignoreUndefined: true,
    })
    const dbName = new URL(url.replace(/^mongodb\+srv:/, 'mongodb:')).pathname.slice(1) || 'riffle'
    const store = new MongoPullStore(client, client.db(dbName), `${redactUrl(url)}`)
    try {
      const info = await store.#db.command({ buildInfo: 1 })
      if (info.ferretdbVersion === undefined) store.#opsPerCommand = 1000
    } catch {
      // Down at start-up: operations fail with RIFFLE_STORE_UNAVAILABLE until it answers.
    }
    return store
  }

  #get(name: string): Prepared {
    const p = this.#prepared.get(name)
    if (!p) throw unknownCollection(name)
    return p
  }

  #wrap(e: unknown): unknown {
    if (isConnectionError(e)) {
      // A client whose first connection failed stays closed until connect() is called again;
      // once connected, it rides out later outages by itself.
      if (isTopologyClosed(e) && !this.#closed) {
        this.#reconnecting ??= this.#client
          .connect()
          .catch(() => {})
          .finally(() => {
            this.#reconnecting = undefined
          })
      }
      const msg = e instanceof Error ? e.message : String(e)
      return riffleError('RIFFLE_STORE_UNAVAILABLE', `pull store ${this.description}: ${msg}`, { cause: e })
    }
    return e
  }

  async prepare(collections: Collection[]): Promise<void> {
    const next = new Map<string, Prepared>()
    for (const col of collections) {
      const c = compileCollection(col)
      const coll = this.#db.collection<PullDoc>(COLLECTION_PREFIX + c.name)
      const timestamps = [...c.fields].filter(([, t]) => t === 'timestamp').map(([n]) => n)
      next.set(c.name, { c, coll, timestamps })
    }
    this.#prepared = next
    // Indexes for the expiry sweep; best effort, so a server that is down does not block start-up.
    await Promise.all(
      [...next.values()]
        .filter((p) => p.c.ttlMs !== undefined)
        .map((p) => p.coll.createIndex({ _updatedAt: 1 }, { name: 'riffle_updated_at' }).catch(() => {})),
    )
  }

  async get(collection: string, key: string, fields?: string[]): Promise<PullRecord | undefined> {
    const p = this.#get(collection)
    let d: PullDoc | null
    try {
      d = await p.coll.findOne({ _id: key })
    } catch (e) {
      throw this.#wrap(e)
    }
    return d ? toRecord(d, expiredBefore(p.c), fields) : undefined
  }

  async getMany(collection: string, keys: string[]): Promise<Array<PullRecord | undefined>> {
    const p = this.#get(collection)
    if (keys.length === 0) return []
    let docs: PullDoc[]
    try {
      docs = await p.coll.find({ _id: { $in: keys } }).toArray()
    } catch (e) {
      throw this.#wrap(e)
    }
    const cutoff = expiredBefore(p.c)
    const byKey = new Map<string, PullDoc>()
    for (const d of docs) byKey.set(d._id, d)
    return keys.map((k) => {
      const d = byKey.get(k)
      return d ? toRecord(d, cutoff) : undefined
    })
  }

  #encode(p: Prepared, set: Record<string, unknown>): Record<string, unknown> {
    if (p.timestamps.length === 0) return set
    const out = { ...set }
    for (const f of p.timestamps) if (typeof out[f] === 'string') out[f] = new Date(out[f] as string)
    return out
  }

  async write(collection: string, writes: PullWrite[]): Promise<{ applied: number; skipped: number }> {
    const p = this.#get(collection)
    const checked = checkWrites(p.c, writes)
    if (checked.length === 0) return { applied: 0, skipped: 0 }
    try {
      const { applied, rest } = await this.#insertAbsent(p, checked)
      if (rest.length === 0) return { applied, skipped: checked.length - applied }
      let r: { applied: number }
      try {
        r = await this.#writeByState(p, rest)
      } catch (e) {
        // Another writer created one of the keys between our read and our insert: read again, once.
        if ((e as { code?: number }).code !== 11000) throw e
        r = await this.#writeByState(p, rest)
      }
      return { applied: applied + r.applied, skipped: checked.length - applied - r.applied }
    } catch (e) {
      throw this.#wrap(e)
    }
  }

  /**
   * The load path, without reading first: each key's writes (but for keys with a delete, which must
   * know whether the record exists) are folded into a whole document and inserted, unordered. A key
   * that exists already fails alone with a duplicate-key error, writes nothing, and its writes are
   * returned in `rest` (in order) for #writeByState; so are the writes of keys with a delete.
   */
  async #insertAbsent(
    p: Prepared,
    checked: CheckedWrite[],
  ): Promise<{ applied: number; rest: CheckedWrite[] }> {
    const now = Date.now()
    const byKey = new Map<string, { doc: PullDoc | null; applied: number }>()
    const stateKeys = new Set<string>()
    for (const w of checked) if (w.delete) stateKeys.add(w.key)
    for (const w of checked) {
      if (stateKeys.has(w.key)) continue
      let folded = byKey.get(w.key)
      if (!folded) {
        folded = { doc: null, applied: 0 }
        byKey.set(w.key, folded)
      }
      const next = this.#fold(p, folded.doc, w, now)
      if (next === undefined) continue // older than a write before it in this batch
      folded.doc = next
      folded.applied++
    }
    const docs: PullDoc[] = []
    for (const f of byKey.values()) docs.push(f.doc!)
    let applied = 0
    for (let i = 0; i < docs.length; i += INSERT_CHUNK) {
      const chunk = docs.slice(i, i + INSERT_CHUNK)
      const present = new Set<number>()
      try {
        await p.coll.insertMany(chunk, { ordered: false })
      } catch (e) {
        const errors = (e as { writeErrors?: unknown }).writeErrors
        if (!(e instanceof MongoBulkWriteError) || !errors) throw e
        const list = (Array.isArray(errors) ? errors : [errors]) as Array<{ code: number; index: number }>
        if (list.length === 0) throw e
        for (const we of list) {
          if (we.code !== 11000) throw e
          present.add(we.index)
        }
      }
      chunk.forEach((d, j) => {
        if (present.has(j)) stateKeys.add(d._id)
        else applied += byKey.get(d._id)!.applied
      })
    }
    return { applied, rest: stateKeys.size === 0 ? [] : checked.filter((w) => stateKeys.has(w.key)) }
  }

  /**
   * A write folded into the document that an absent record becomes: undefined when it is skipped
   * (only if newer, and older than the write before it), null when it deletes the record.
   */
  #fold(p: Prepared, doc: PullDoc | null, w: CheckedWrite, now: number): PullDoc | null | undefined {
    if (doc && w.onlyIfNewer && doc._eventTime !== undefined && doc._eventTime > w.eventTime!)
      return undefined
    if (w.delete) return null
    const next: PullDoc = doc ? { ...doc } : ({ _id: w.key } as PullDoc)
    Object.assign(next, this.#encode(p, w.set))
    for (const f of w.unset) delete next[f]
    next._updatedAt = new Date(now)
    next._writer = w.writer
    if (w.eventTime !== undefined) next._eventTime = w.eventTime
    return next
  }

  /**
   * Reads the stored state of the batch's keys, then: writes to absent (or expired) records are
   * folded in memory into whole documents and inserted with insertMany; writes to present records
   * become single-document updates, in order, before the inserts.
   */
  async #writeByState(p: Prepared, checked: CheckedWrite[]): Promise<{ applied: number }> {
    const now = Date.now()
    const cutoff = expiredBefore(p.c, now)
    const keys = [...new Set(checked.map((w) => w.key))]
    const state = new Map<string, { present: boolean; eventTime: number | undefined }>()
    const docs = await p.coll
      .find({ _id: { $in: keys } }, { projection: { _id: 1, _updatedAt: 1, _eventTime: 1 } })
      .toArray()
    const ops: AnyBulkWriteOperation<PullDoc>[] = []
    let expiredDeletes = 0
    for (const d of docs) {
      if (d._updatedAt instanceof Date && d._updatedAt.getTime() <= cutoff) {
        ops.push({ deleteOne: { filter: { _id: d._id, _updatedAt: { $lte: new Date(cutoff) } } } })
        expiredDeletes++
      } else state.set(d._id, { present: true, eventTime: d._eventTime })
    }
    const pending = new Map<string, PullDoc | null>()
    let folded = 0
    for (const w of checked) {
      const st = state.get(w.key)
      if (st?.present) {
        if (w.onlyIfNewer && st.eventTime !== undefined && st.eventTime > w.eventTime!) continue
        ops.push(this.#update(p, w, now))
        if (w.delete) state.delete(w.key)
        else if (w.eventTime !== undefined) st.eventTime = w.eventTime
        continue
      }
      // Absent: fold into the document that will be inserted.
      const doc = pending.get(w.key)
      if (w.delete && !doc) continue // deleting an absent record: skipped
      const next = this.#fold(p, doc ?? null, w, now)
      if (next === undefined) continue
      pending.set(w.key, next)
      folded++
    }
    let applied = folded
    for (let i = 0; i < ops.length; i += this.#opsPerCommand) {
      const r = await p.coll.bulkWrite(ops.slice(i, i + this.#opsPerCommand), { ordered: true })
      applied += r.matchedCount + r.upsertedCount + r.deletedCount
    }
    applied -= expiredDeletes
    const inserts = [...pending.values()].filter((d): d is PullDoc => d !== null)
    for (let i = 0; i < inserts.length; i += INSERT_CHUNK) {
      await p.coll.insertMany(inserts.slice(i, i + INSERT_CHUNK), { ordered: true })
    }
    return { applied }
  }

  /** The single-document operation for a write to a present record; the filter guards against races. */
  #update(p: Prepared, w: CheckedWrite, now: number): AnyBulkWriteOperation<PullDoc> {
    const newer = w.onlyIfNewer ? { _eventTime: { $not: { $gt: w.eventTime } } } : {}
    if (w.delete) return { deleteOne: { filter: { _id: w.key, ...newer } } }
    const meta: Record<string, unknown> = { _updatedAt: new Date(now), _writer: w.writer }
    if (w.eventTime !== undefined) meta._eventTime = w.eventTime
    const update: Document = { $set: { ...this.#encode(p, w.set), ...meta } }
    if (w.unset.length) update.$unset = Object.fromEntries(w.unset.map((f) => [f, '']))
    return { updateOne: { filter: { _id: w.key, ...newer }, update, upsert: !w.onlyIfNewer } }
  }

  async scan(collection: string, opts: { after?: string; limit: number }): Promise<ScanPage> {
    const p = this.#get(collection)
    const cutoff = expiredBefore(p.c)
    const filter: Document = opts.after ? { _id: { $gt: opts.after } } : {}
    if (p.c.ttlMs !== undefined) filter._updatedAt = { $gt: new Date(cutoff) }
    let docs: PullDoc[]
    try {
      docs = await p.coll
        .find(filter)
        .sort({ _id: 1 })
        .limit(opts.limit + 1)
        .toArray()
    } catch (e) {
      throw this.#wrap(e)
    }
    const more = docs.length > opts.limit
    const records = (more ? docs.slice(0, opts.limit) : docs)
      .map((d) => toRecord(d, cutoff))
      .filter((r): r is PullRecord => r !== undefined)
    return { records, next: more ? docs[opts.limit - 1]!._id : undefined }
  }

  /** Deletes expired records (reads already hide them; this reclaims the space). */
  async sweep(now = Date.now()): Promise<number> {
    let n = 0
    for (const p of this.#prepared.values()) {
      if (p.c.ttlMs === undefined) continue
      const r = await p.coll.deleteMany({ _updatedAt: { $lte: new Date(expiredBefore(p.c, now)) } })
      n += r.deletedCount
    }
    return n
  }

  async ping(): Promise<void> {
    try {
      await this.#db.command({ ping: 1 })
    } catch (e) {
      throw this.#wrap(e)
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#sweepTimer)
    await this.#client.close()
  }

  /** Drops the whole database; for tests and benchmarks on throwaway databases only. */
  async dropDatabase(): Promise<void> {
    await this.#db.dropDatabase()
  }
}
