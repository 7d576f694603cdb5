/** The background appender's worker thread: see background.ts. */
import { parentPort, workerData } from 'node:worker_threads'
import Sqlite from 'better-sqlite3'
import { sqliteAppender } from './append.js'
import type { AppendReply, AppendRequest } from './background.js'

const { file } = workerData as { file: string }
const db = new Sqlite(file, { fileMustExist: true })
// the same settings as the store's own connection (db/sql.ts, HistoryStore.open)
db.pragma('journal_mode = WAL')
db.pragma('synchronous = NORMAL')
db.pragma('busy_timeout = 5000')
db.pragma('wal_autocheckpoint = 10000')
db.pragma('cache_size = -32768')
const append = sqliteAppender(db)

parentPort!.on('message', (m: AppendRequest) => {
  let reply: AppendReply
  try {
    reply = { id: m.id, appended: append(m.rows) }
  } catch (e) {
    const err = e as { message?: string; code?: string }
    reply = { id: m.id, error: String(err.message ?? e), code: err.code }
  }
  parentPort!.postMessage(reply)
})
