/** The background appender's worker thread: see background.ts. */
import { parentPort, workerData } from 'node:worker_threads'
import { CONNECTION_PRAGMAS } from '../db/pragmas.js'
import Sqlite from '../db/sqlite-driver.js'
import { APPEND_PRAGMAS, sqliteAppender } from './append.js'
import type { AppendReply, AppendRequest } from './background.js'

const { file } = workerData as { file: string }
const db = new Sqlite(file, { fileMustExist: true })
// the same settings as the store's own connection
for (const p of [...CONNECTION_PRAGMAS, ...APPEND_PRAGMAS]) db.pragma(p)
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
