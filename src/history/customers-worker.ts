/**
 * The customer index's worker thread: copies new history records into the index file in large
 * sorted batches, and applies the history's purges to it. See customers.ts.
 */
import { parentPort, workerData } from 'node:worker_threads'
import Sqlite from '../db/sqlite-driver.js'
import { INDEX_CHUNK, type IndexerMessage, indexTail, purgeIndex } from './customers.js'

const { historyFile, indexFile } = workerData as { historyFile: string; indexFile: string }

const db = new Sqlite(indexFile)
db.pragma('journal_mode = WAL')
db.pragma('synchronous = NORMAL')
db.pragma('busy_timeout = 5000')
db.pragma('cache_size = -65536')
db.prepare('attach database ? as h').run(historyFile)

// Gathering appends for a moment makes batches larger: fewer index pages written per record.
const GATHER_MS = 200

let stopping = false
let pending = true
let signal: (() => void) | undefined
parentPort!.on('message', (m: IndexerMessage) => {
  if (m.type === 'stop') stopping = true
  pending = true
  signal?.()
})

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
// until an append (or a stop) is announced; a while at most, for purges made by other processes
const work = () =>
  pending
    ? Promise.resolve()
    : new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 5_000)
        signal = () => {
          clearTimeout(t)
          resolve()
        }
      })

const isBusy = (e: unknown) => /^SQLITE_BUSY/.test(String((e as { code?: string }).code))

while (!stopping) {
  await work()
  signal = undefined
  if (stopping) break
  await sleep(GATHER_MS)
  pending = false
  try {
    while (!stopping && indexTail(db, 'h', 'main', INDEX_CHUNK) === INDEX_CHUNK) {
      // behind: keep going in full batches
    }
    purgeIndex(db, 'h', 'main')
  } catch (e) {
    // another process's indexer holds the index: try again on the next round
    if (!isBusy(e)) throw e
    pending = true
  }
}
db.close()
parentPort!.close() // the message listener would keep the thread alive
