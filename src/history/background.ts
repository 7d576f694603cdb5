/**
 * History appends on a worker thread. A SQLite insert is synchronous: appending a batch of 5,000
 * activations keeps the calling thread busy for ~13 ms, during which it can neither evaluate the
 * next batch nor write the pull store. The background appender hands the batch to a worker thread
 * with its own connection to the same file (WAL: readers on other connections are not blocked),
 * so that a caller that does not need the result at once (the scheduler's pipeline) keeps working.
 *
 * Requests are applied in the order they were made, one at a time. A promise resolves once its
 * batch is committed, with the same guarantee as HistoryStore.append.
 */
import type { Worker } from 'node:worker_threads'
import { startModuleWorker } from '../worker.js'
import type { Activation } from './activation.js'
import { activationParams } from './append.js'

export interface AppendRequest {
  id: number
  /** Each activation as its activationParams: flat values clone faster than nested objects. */
  rows: unknown[][]
}

export type AppendReply = { id: number; appended: number } | { id: number; error: string; code?: string }

interface Waiting {
  resolve: (appended: number) => void
  reject: (e: Error) => void
}

export class BackgroundAppender {
  readonly #file: string
  readonly #waiting = new Map<number, Waiting>()
  #worker: Worker | undefined
  #next = 0
  /** The latest append asked for. */
  #last: Promise<number> | undefined

  /** `file`: the SQLite database holding history_activations (its tables exist already). */
  constructor(file: string) {
    this.#file = file
  }

  /** Appends `batch` on the worker thread; resolves with how many records were new. */
  append(batch: readonly Activation[]): Promise<number> {
    const w = this.#worker ?? this.#start()
    const id = ++this.#next
    const done = new Promise<number>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject })
      // work in flight keeps the process alive; an idle worker does not
      if (this.#waiting.size === 1) w.ref()
      w.postMessage({ id, rows: batch.map(activationParams) } satisfies AppendRequest)
    })
    this.#last = done
    return done
  }

  /** Waits for the appends in flight (the worker applies them in order: the last one), then stops. */
  async close(): Promise<void> {
    const w = this.#worker
    if (!w) return
    await this.#last?.catch(() => {})
    this.#worker = undefined
    await w.terminate()
  }

  #settle(id: number): Waiting | undefined {
    const p = this.#waiting.get(id)
    if (!p) return undefined
    this.#waiting.delete(id)
    if (this.#waiting.size === 0) this.#worker?.unref()
    return p
  }

  #start(): Worker {
    const w = startModuleWorker(import.meta.url, 'append-worker', { file: this.#file })
    w.on('message', (r: AppendReply) => {
      const p = this.#settle(r.id)
      if (!p) return
      if ('error' in r) p.reject(Object.assign(new Error(r.error), { code: r.code }))
      else p.resolve(r.appended)
    })
    const fail = (e: Error) => {
      if (this.#worker === w) this.#worker = undefined
      for (const id of [...this.#waiting.keys()]) this.#settle(id)?.reject(e)
    }
    w.on('error', (e) => fail(new Error(`the history append worker failed: ${e.message}`, { cause: e })))
    w.on('exit', (code) => fail(new Error(`the history append worker stopped (exit code ${code})`)))
    this.#worker = w
    return w
  }
}
