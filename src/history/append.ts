/**
 * The SQLite append of the output history, shared by the store (on the caller's thread) and the
 * background appender's worker thread (append-worker.ts): one prepared insert, one IMMEDIATE
 * transaction per batch, idempotent on the activation id.
 */
import type Sqlite from 'better-sqlite3'
import type { Activation } from './activation.js'
import { COLUMNS } from './schema.js'

export const INSERT_COLUMNS = COLUMNS.filter((c) => c !== 'seq')

/**
 * The settings of a connection that appends to the history. Appends write many pages: checkpoint
 * the WAL every ~40 MB rather than every 4 MB (measured: ~1.5x the append rate), and keep the
 * indexes' upper levels in memory.
 */
export const APPEND_PRAGMAS = ['wal_autocheckpoint = 10000', 'cache_size = -32768']

/** An activation as the values of INSERT_COLUMNS, in order. */
export function activationParams(a: Activation): unknown[] {
  const s = a.source
  return [
    a.id,
    a.campaign,
    a.campaignVersion,
    a.cell,
    a.customerKey,
    s.kind === 'stream' ? s.topic : null,
    s.kind === 'stream' ? s.partition : null,
    s.kind === 'stream' ? s.offset : null,
    s.kind === 'run' ? s.runId : null,
    a.status,
    a.eventTime,
    a.outputTime,
    JSON.stringify(a.content ?? {}),
    JSON.stringify(a.deliveries ?? {}),
    a.reason ?? null,
  ]
}

/**
 * Appends a batch (each activation as its `activationParams`) in one transaction on `h`; a record
 * already there (a replay) is left as it was. The function returns how many records were new.
 */
export function sqliteAppender(h: Sqlite.Database): (rows: readonly unknown[][]) => number {
  const insert = h.prepare(
    `insert into history_activations (${INSERT_COLUMNS.join(', ')}) values (${INSERT_COLUMNS.map(() => '?').join(', ')}) on conflict (id) do nothing`,
  )
  const tx = h.transaction((rows: readonly unknown[][]) => {
    let n = 0
    for (const r of rows) n += insert.run(r).changes
    return n
  })
  return (rows) => tx.immediate(rows)
}
