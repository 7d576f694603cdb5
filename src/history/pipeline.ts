/**
 * The output history as the scheduler and the engine append to it: batch N's append is in flight
 * (on a worker thread, see background.ts) while batch N+1 is evaluated and written to the pull
 * store (and, in the engine, while batch N's Kafka transaction is sent). At most one append is in
 * flight; the next append first waits for it.
 *
 * What must follow durability waits for it: `whenDurable` runs its callback (the run's progress
 * record, which is what a resumed run starts from) as soon as every append made so far has
 * committed, and never if one failed. Reads stay exact: `getMany` also answers from the batch in
 * flight, and `countRecent` (frequency caps) waits for it first.
 *
 * A fresh run (not a resumed one) whose customer key is the audience's key column needs no history
 * lookup at all: its activation ids name the run, so the history holds none of them but those the
 * run appended itself; and the audience comes ordered by that key, so a key the audience yields
 * again is in the same batch or the one before it (or every row between is that key). With
 * `ownWritesOnly`, `getMany` answers from the last two batches appended, in memory.
 */
import type { HistoryPort } from '../engine/activate.js'
import type { Activation } from './activation.js'

/** A history that may append on another thread (HistoryStore.appendInBackground). */
export interface BackgroundHistory extends HistoryPort {
  appendInBackground?(batch: readonly Activation[]): Promise<unknown>
}

export class PipelinedHistory implements HistoryPort {
  readonly #history: BackgroundHistory
  readonly #ownWritesOnly: boolean
  /** The batch in flight: for replay lookups until it is committed and the next one starts. */
  #inflight: Map<string, Activation> | undefined
  /** The last batch appended (in flight or committed), and the one before it (`ownWritesOnly`). */
  #recent: Map<string, Activation> | undefined
  #previous: Map<string, Activation> | undefined
  /** Settles once every append and callback so far is done; rejects once one append failed. */
  #chain: Promise<void> = Promise.resolve()

  constructor(history: BackgroundHistory, opts: { ownWritesOnly?: boolean } = {}) {
    this.#history = history
    this.#ownWritesOnly = opts.ownWritesOnly ?? false
  }

  /** Waits for the append in flight (and what waited for it), then starts this one. */
  async append(batch: readonly Activation[]): Promise<void> {
    await this.settle()
    if (batch.length === 0) return
    const done = this.#history.appendInBackground
      ? this.#history.appendInBackground(batch)
      : this.#history.append(batch)
    const byId = new Map(batch.map((a) => [a.id, a]))
    if (this.#ownWritesOnly) this.#previous = this.#recent
    this.#recent = byId
    this.#inflight = byId
    this.#link(done.then(() => {}))
  }

  /**
   * Runs `fn` as soon as every append made so far has committed (and the callbacks before it have
   * run): at once when none is in flight. Never once an append has failed.
   */
  whenDurable(fn: () => Promise<void>): void {
    this.#link(this.#chain.then(fn))
  }

  /**
   * Settles once every append made so far has committed (and the callbacks before): for a caller
   * that must not go on before, such as the engine's Kafka commit. Rejects if one failed.
   */
  durable(): Promise<void> {
    return this.#chain
  }

  /** Waits for the append in flight and what waits for it. Throws if an append or callback failed. */
  async settle(): Promise<void> {
    const chain = this.#chain
    this.#chain = Promise.resolve()
    this.#inflight = undefined
    await chain
  }

  #link(p: Promise<void>): void {
    p.catch(() => {}) // reported by the next append or settle
    this.#chain = p
  }

  async getMany(ids: readonly string[]): Promise<Map<string, Activation>> {
    const memory = [this.#inflight, ...(this.#ownWritesOnly ? [this.#recent, this.#previous] : [])]
    const found = this.#ownWritesOnly ? new Map<string, Activation>() : await this.#history.getMany(ids)
    for (const batch of memory) {
      if (!batch) continue
      for (const id of ids) {
        const a = batch.get(id)
        if (a && !found.has(id)) found.set(id, a)
      }
    }
    return found
  }

  async countRecent(q: Parameters<HistoryPort['countRecent']>[0]): Promise<Map<string, number>> {
    await this.settle()
    return this.#history.countRecent(q)
  }
}
