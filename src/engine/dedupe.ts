/**
 * Deduplication state: which dedupe keys each campaign has acted on, until their window ends.
 * Kept in Riffle's database (SQLite or PostgreSQL), so it holds across restarts and processes.
 */
import type { SqlDatabase } from '../db/sql.js'

const MIGRATIONS = [
  {
    id: '001-dedupe',
    sql: `create table if not exists engine_dedupe (
  campaign text not null,
  dedupe_key text not null,
  expires_at bigint not null,
  primary key (campaign, dedupe_key)
)`,
  },
]

export class DedupeStore {
  #lastPurge = 0

  private constructor(private readonly db: SqlDatabase) {}

  static async open(db: SqlDatabase): Promise<DedupeStore> {
    await db.migrate('engine', MIGRATIONS)
    return new DedupeStore(db)
  }

  /** The keys (of those given) that this campaign has seen and whose window has not ended. */
  async seen(campaign: string, keys: string[], now: number): Promise<Set<string>> {
    if (keys.length === 0) return new Set()
    const unique = [...new Set(keys)]
    const match =
      this.db.dialect === 'postgres'
        ? 'dedupe_key = any(?::text[])'
        : 'dedupe_key in (select value from json_each(?))'
    const rows = await this.db.all<{ k: string }>(
      `select dedupe_key as k from engine_dedupe where campaign = ? and ${match} and expires_at > ?`,
      [campaign, this.db.dialect === 'postgres' ? unique : JSON.stringify(unique), now],
    )
    return new Set(rows.map((r) => r.k))
  }

  async remember(
    entries: Array<{ campaign: string; key: string; expiresAt: number }>,
    now: number,
  ): Promise<void> {
    if (entries.length === 0) return
    await this.db.transaction(async (tx) => {
      for (const e of entries) {
        await tx.run(
          'insert into engine_dedupe (campaign, dedupe_key, expires_at) values (?, ?, ?) on conflict (campaign, dedupe_key) do update set expires_at = excluded.expires_at',
          [e.campaign, e.key, e.expiresAt],
        )
      }
      if (now - this.#lastPurge > 60_000) {
        this.#lastPurge = now
        await tx.run('delete from engine_dedupe where expires_at <= ?', [now])
      }
    })
  }
}
