/** The WAL checkpointer's worker thread: see checkpointer.ts. */
import { parentPort, workerData } from 'node:worker_threads'
import type { CheckpointerMessage } from './checkpointer.js'
import Sqlite from './sqlite-driver.js'

const { everyMs } = workerData as { everyMs: number }
const open = new Map<string, Sqlite.Database>()

parentPort!.on('message', (m: CheckpointerMessage) => {
  if (m.type === 'add' && !open.has(m.file)) {
    try {
      const db = new Sqlite(m.file, { fileMustExist: true })
      db.pragma('busy_timeout = 0')
      open.set(m.file, db)
    } catch {
      // not there (yet, or any more): nothing to checkpoint
    }
  } else if (m.type === 'remove') {
    open.get(m.file)?.close()
    open.delete(m.file)
  }
})

setInterval(() => {
  for (const [file, db] of open) {
    try {
      db.pragma('wal_checkpoint(PASSIVE)')
    } catch {
      // busy or gone: the next round tries again; a file that is gone is dropped
      if (!db.open) open.delete(file)
    }
  }
}, everyMs)
