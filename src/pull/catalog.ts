/**
 * The pull collections as the Pull API sees them: compiled once per definitions revision and held
 * in memory, so a request costs a map lookup, not a database read. The revision is checked at most
 * once a second (and at once when an unknown collection is asked for); when it has moved, the
 * store is prepared for the new collections before they are served.
 */
import type { Snapshot } from '../definitions/service.js'
import type { PullStore } from './store.js'
import { compileCollection, type PullCollection } from './values.js'

export interface SnapshotSource {
  snapshot(): Promise<Snapshot>
}

export class PullCatalog {
  #collections = new Map<string, PullCollection>()
  #revision = -1
  #checkedAt = 0
  #refreshing: Promise<void> | undefined

  constructor(
    readonly store: PullStore,
    private readonly defs: SnapshotSource,
    private readonly maxAgeMs = 1_000,
  ) {}

  /** The collection when the cached definitions are fresh enough and have it; no waiting. */
  cached(name: string): PullCollection | undefined {
    return Date.now() - this.#checkedAt > this.maxAgeMs ? undefined : this.#collections.get(name)
  }

  /** The collection, or undefined when no such collection is defined. */
  async collection(name: string): Promise<PullCollection | undefined> {
    if (Date.now() - this.#checkedAt > this.maxAgeMs) await this.refresh()
    const c = this.#collections.get(name)
    if (c) return c
    await this.refresh()
    return this.#collections.get(name)
  }

  /** Re-reads the definitions revision; prepares the store and swaps the collections when it moved. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined
    })
    return this.#refreshing
  }

  async #refresh(): Promise<void> {
    let snap: Snapshot
    try {
      snap = await this.defs.snapshot()
    } catch (e) {
      // The definitions database is down: keep serving what we know; without anything, fail.
      if (this.#revision < 0) throw e
      this.#checkedAt = Date.now()
      return
    }
    if (snap.revision !== this.#revision) {
      const list = snap.definitions.collections
      await this.store.prepare(list)
      this.#collections = new Map(list.map((c) => [c.name, compileCollection(c)]))
      this.#revision = snap.revision
    }
    this.#checkedAt = Date.now()
  }
}
