/**
 * WAL checkpoints off the event loop. SQLite copies its write-ahead log back into the database
 * file (a checkpoint) inside whichever commit crosses `wal_autocheckpoint`, and that copy ends
 * with an fsync: on this machine 8 ms for 4 MB and 67 ms for 30 MB, during which a Node process
 * does nothing else (Kafka responses wait, latencies jump). Here a worker thread, with its own
 * connection to each registered file, runs a PASSIVE checkpoint every CHECKPOINT_EVERY_MS, so the
 * log rarely reaches the threshold and the appending thread almost never checkpoints itself. The
 * files' own `wal_autocheckpoint` stays as the safety net if the worker stops.
 *
 * A PASSIVE checkpoint never blocks writers or readers; a commit simply finds the log already
 * copied and starts it again from the beginning.
 */
import type { Worker } from 'node:worker_threads'
import { startModuleWorker } from '../worker.js'

export const CHECKPOINT_EVERY_MS = 200

export type CheckpointerMessage = { type: 'add'; file: string } | { type: 'remove'; file: string }

let worker: Worker | undefined
const files = new Map<string, number>()

function start(): Worker {
  const w = startModuleWorker(import.meta.url, 'checkpoint-worker', { everyMs: CHECKPOINT_EVERY_MS })
  // A worker that fails leaves the files to their own autocheckpoint: slower, never wrong.
  w.on('error', () => {})
  w.on('exit', () => {
    if (worker === w) worker = undefined
  })
  for (const file of files.keys()) w.postMessage({ type: 'add', file } satisfies CheckpointerMessage)
  return w
}

/** Checkpoint `file` (a WAL-mode SQLite database) in the background until `release`. */
export function checkpointInBackground(file: string): void {
  if (file === '' || file === ':memory:' || file.startsWith('file::memory:')) return
  const n = files.get(file) ?? 0
  files.set(file, n + 1)
  if (n > 0) return
  if (!worker) worker = start()
  else worker.postMessage({ type: 'add', file } satisfies CheckpointerMessage)
}

/** Stops checkpointing `file` (call before closing the last connection to it). */
export function release(file: string): void {
  const n = files.get(file)
  if (n === undefined) return
  if (n > 1) {
    files.set(file, n - 1)
    return
  }
  files.delete(file)
  worker?.postMessage({ type: 'remove', file } satisfies CheckpointerMessage)
  if (files.size === 0 && worker) {
    void worker.terminate()
    worker = undefined
  }
}
