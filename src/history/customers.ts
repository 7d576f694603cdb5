/**
 * The per-customer index of the output history on SQLite: what the per-customer view and frequency
 * caps read.
 *
 * Why it is not a plain index on the history table: customer keys arrive in random order, so every
 * appended record dirties a different page of such an index, and SQLite writes each dirty page in
 * full to its WAL at every commit. Measured here, that cut batched appends from ~150k/s to ~36k/s
 * (1,000 per batch). So the index is derived: a worker thread copies new records' keys into a
 * separate file, `<name>.customers.db`, in large batches sorted by key (far fewer pages per record,
 * and off the appending thread), and readers add the records it has not taken yet (`seq >
 * indexed_to`) from the history table itself. Reads are therefore always complete.
 *
 * The index can always be rebuilt from the history: it is emptied and rebuilt when it does not
 * belong to the history file beside it. An in-memory history keeps its index in memory, updated
 * right after each append.
 */
import { basename, dirname, join } from 'node:path'
import type { Worker } from 'node:worker_threads'
import Sqlite from '../db/sqlite-driver.js'
import { startModuleWorker } from '../worker.js'

/** Records the indexer takes per transaction, at most. */
export const INDEX_CHUNK = 50_000

const SETUP = [
  `create table if not exists S.history_customers (
  customer_key text not null,
  output_time integer not null,
  seq integer not null,
  status text not null,
  campaign text not null,
  primary key (customer_key, output_time, seq)
) without rowid`,
  'create index if not exists S.history_customers_by_time on history_customers (output_time)',
  `create table if not exists S.history_customers_meta (
  id integer primary key check (id = 1),
  instance text not null,
  indexed_to integer not null,
  purge_cutoff integer not null default 0,
  purge_floor integer not null default 0
)`,
]

/** Where the index of a history file lives; null for an in-memory history. */
export function indexFileFor(historyFile: string): string | null {
  if (historyFile === '' || historyFile === ':memory:') return null
  return join(dirname(historyFile), `${basename(historyFile).replace(/\.db$/, '')}.customers.db`)
}

/**
 * Indexes up to `limit` records after the index's watermark, sorted by key, in one transaction that
 * writes the index only. `history` and `index` name the schemas on `db`. Returns how many it took.
 */
export function indexTail(db: Sqlite.Database, history: string, index: string, limit: number): number {
  // deferred, not immediate: an immediate transaction would lock every attached file for writing
  return db.transaction(() => {
    const from = (
      db.prepare(`select indexed_to from ${index}.history_customers_meta where id = 1`).get() as {
        indexed_to: number
      }
    ).indexed_to
    const last = db
      .prepare(
        `select max(seq) as m, count(*) as n from (select seq from ${history}.history_activations where seq > ? order by seq limit ?)`,
      )
      .get(from, limit) as { m: number | null; n: number }
    if (last.m === null) return 0
    db.prepare(
      `insert or ignore into ${index}.history_customers (customer_key, output_time, seq, status, campaign)
       select customer_key, output_time, seq, status, campaign from ${history}.history_activations
       where seq > ? and seq <= ? order by customer_key, output_time, seq`,
    ).run(from, last.m)
    db.prepare(`update ${index}.history_customers_meta set indexed_to = ? where id = 1`).run(last.m)
    return last.n
  })()
}

/**
 * Applies the history's last purge (as `history_info` records it) to the index, once, in bounded
 * chunks: the index never keeps entries for long that the history no longer has.
 */
export function purgeIndex(db: Sqlite.Database, history: string, index: string): number {
  const want = db.prepare(`select purge_cutoff as c, purge_floor as f from ${history}.history_info`).get() as
    | { c: number; f: number }
    | undefined
  const done = db
    .prepare(`select purge_cutoff as c, purge_floor as f from ${index}.history_customers_meta`)
    .get() as { c: number; f: number }
  if (!want || (want.c === done.c && want.f === done.f)) return 0
  let total = 0
  for (;;) {
    const r = db
      .prepare(
        `delete from ${index}.history_customers where (customer_key, output_time, seq) in (select customer_key, output_time, seq from ${index}.history_customers where output_time < ? and seq <= ? limit 10000)`,
      )
      .run(want.c, want.f)
    total += r.changes
    if (r.changes < 10_000) break
  }
  db.prepare(`update ${index}.history_customers_meta set purge_cutoff = ?, purge_floor = ?`).run(
    want.c,
    want.f,
  )
  return total
}

/** Messages to the indexer thread. */
export type IndexerMessage = { type: 'appended' } | { type: 'stop' }

/**
 * The index of one SQLite history: where to read it, and what keeps it up to date (a worker thread
 * for a history file; inline, after each append, for an in-memory one).
 */
export class CustomerIndex {
  /** The connection to read the index with, and its schema name there. */
  readonly reader: Sqlite.Database
  readonly schema: string
  readonly #history: Sqlite.Database
  readonly #historyFile: string | null
  readonly #indexFile: string | null
  #worker: Worker | undefined
  #retryAt = 0
  #failures = 0
  /** Told when the worker fails; it is restarted on a later append. */
  onError: (e: unknown) => void = () => {}

  private constructor(history: Sqlite.Database, historyFile: string | null, indexFile: string | null) {
    this.#history = history
    this.#historyFile = historyFile
    this.#indexFile = indexFile
    if (indexFile) {
      this.reader = new Sqlite(indexFile)
      this.reader.pragma('journal_mode = WAL')
      this.reader.pragma('synchronous = NORMAL')
      this.reader.pragma('busy_timeout = 5000')
      this.schema = 'main'
    } else {
      history.exec(`attach database ':memory:' as hc`)
      this.reader = history
      this.schema = 'hc'
    }
  }

  /** Opens (and when needed resets) the index of the history on connection `history`. */
  static open(history: Sqlite.Database): CustomerIndex {
    const file = history.memory ? null : history.name
    const index = new CustomerIndex(history, file, file ? indexFileFor(file) : null)
    index.#prepare()
    // a large backlog (an index deleted, or a history from before it existed): start catching up now
    const max = (
      history.prepare('select max(seq) as m from history_activations').get() as { m: number | null }
    ).m
    if (file && max !== null && max - index.indexedTo() > 10_000) index.appended()
    return index
  }

  #prepare(): void {
    const instance = (
      this.#history.prepare('select instance from history_info').get() as { instance: string }
    ).instance
    const db = this.reader
    for (const statement of SETUP) db.exec(statement.replace('S.', `${this.schema}.`))
    const meta = db.prepare(`select instance from ${this.schema}.history_customers_meta`).get() as
      | { instance: string }
      | undefined
    if (meta?.instance === instance) return
    db.transaction(() => {
      db.exec(`delete from ${this.schema}.history_customers`)
      db.prepare(
        `insert or replace into ${this.schema}.history_customers_meta (id, instance, indexed_to) values (1, ?, 0)`,
      ).run(instance)
    })()
  }

  /** Every record with seq ≤ this is in the index; later ones are read from the history table. */
  indexedTo(): number {
    return (
      this.reader.prepare(`select indexed_to as n from ${this.schema}.history_customers_meta`).get() as {
        n: number
      }
    ).n
  }

  /** Called after every append: indexes now (in memory), or wakes the worker. */
  appended(): void {
    if (!this.#indexFile) {
      while (indexTail(this.#history, 'main', this.schema, INDEX_CHUNK) === INDEX_CHUNK) {
        // a large append: keep going
      }
      return
    }
    if (!this.#worker) this.#start()
    this.#worker?.postMessage({ type: 'appended' } satisfies IndexerMessage)
  }

  /** Called after a purge of the history: the index follows (now, or from the worker). */
  purged(): void {
    if (!this.#indexFile) purgeIndex(this.#history, 'main', this.schema)
    else this.#worker?.postMessage({ type: 'appended' } satisfies IndexerMessage)
  }

  #start(): void {
    if (Date.now() < this.#retryAt || !this.#historyFile || !this.#indexFile) return
    // unref'd: the index catches up in the next process
    const worker = startModuleWorker(import.meta.url, 'customers-worker', {
      historyFile: this.#historyFile,
      indexFile: this.#indexFile,
    })
    worker.on('error', (e) => {
      this.#failures++
      this.#retryAt = Date.now() + Math.min(60_000, 1_000 * 2 ** this.#failures)
      this.onError(e)
    })
    worker.on('exit', () => {
      if (this.#worker === worker) this.#worker = undefined
    })
    this.#worker = worker
  }

  /** Waits until the index has taken every record appended and every purge made so far. */
  async settled(timeoutMs = 60_000): Promise<void> {
    const target = this.#history
      .prepare(
        'select (select max(seq) from history_activations) as m, purge_cutoff as c, purge_floor as f from history_info',
      )
      .get() as { m: number | null; c: number; f: number }
    const purged = this.reader.prepare(
      `select purge_cutoff as c, purge_floor as f from ${this.schema}.history_customers_meta`,
    )
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const p = purged.get() as { c: number; f: number }
      if ((target.m === null || this.indexedTo() >= target.m) && p.c === target.c && p.f === target.f) return
      if (Date.now() > deadline) throw new Error(`the customer index did not catch up with seq ${target.m}`)
      if (this.#indexFile) this.appended()
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  /** Stops the worker once its current batch is committed, and closes the index. */
  async close(): Promise<void> {
    const w = this.#worker
    if (w) {
      w.ref() // an unreferenced thread would let the process end before it stopped
      await new Promise<void>((resolve) => {
        w.once('exit', () => resolve())
        w.postMessage({ type: 'stop' } satisfies IndexerMessage)
      })
    }
    if (this.#indexFile) this.reader.close()
  }
}
