/** Worker threads from one of Riffle's own modules, built (`.js`) or run from source under tsx. */
import { Worker } from 'node:worker_threads'

/**
 * Starts the module `name` (without extension) beside `callerUrl` (the caller's `import.meta.url`)
 * in a worker thread, unref'd: it never keeps the process alive.
 */
export function startModuleWorker(callerUrl: string, name: string, workerData: unknown): Worker {
  const fromSource = callerUrl.endsWith('.ts')
  const entry = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, callerUrl)
  // Under tsx (tests, development) the worker registers tsx itself: threads do not inherit its hooks.
  const worker = fromSource
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}) })`,
        { eval: true, workerData },
      )
    : new Worker(entry, { workerData })
  worker.unref()
  return worker
}
