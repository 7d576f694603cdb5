/**
 * Versioned definitions in Riffle's database (SQLite by default, PostgreSQL when configured).
 * Every change appends a version recording when and by whom; old versions stay readable. A global
 * revision number lets running engines notice changes cheaply.
 */
import type { SqlDatabase } from '../db/sql.js'
import type { Kind } from './schema.js'

export interface StoredDefinition {
  kind: Kind
  name: string
  version: number
  /** The definition; null for a deletion. */
  spec: unknown
  deleted: boolean
  createdAt: string
  createdBy: string
}

export interface Change {
  kind: Kind
  name: string
  /** The new definition, or null to delete. */
  spec: unknown
}

export interface WriteResult {
  revision: number
  written: Array<{ kind: Kind; name: string; version: number; deleted: boolean }>
}

const MIGRATIONS = [
  {
    id: '001-definitions',
    sql: `create table if not exists definition_versions (
  kind text not null,
  name text not null,
  version integer not null,
  spec text,
  deleted integer not null default 0,
  created_at bigint not null,
  created_by text not null,
  primary key (kind, name, version)
);
create table if not exists definition_head (
  kind text not null,
  name text not null,
  version integer not null,
  spec text,
  deleted integer not null default 0,
  created_at bigint not null,
  created_by text not null,
  primary key (kind, name)
);
create table if not exists definition_revision (
  id integer primary key,
  revision bigint not null
);
insert into definition_revision (id, revision) values (1, 0)`,
  },
]

interface Row {
  kind: Kind
  name: string
  version: number
  spec: string | null
  deleted: number | boolean
  created_at: number
  created_by: string
}

function fromRow(r: Row): StoredDefinition {
  return {
    kind: r.kind,
    name: r.name,
    version: Number(r.version),
    spec: r.spec === null ? null : JSON.parse(r.spec),
    deleted: Boolean(r.deleted),
    createdAt: new Date(Number(r.created_at)).toISOString(),
    createdBy: r.created_by,
  }
}

/** JSON with sorted keys, so that an unchanged definition is recognised whatever its key order. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, val) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(
          Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : val,
  )
}

export class DefinitionsStore {
  constructor(private readonly db: SqlDatabase) {}

  static async open(db: SqlDatabase): Promise<DefinitionsStore> {
    await db.migrate('definitions', MIGRATIONS)
    return new DefinitionsStore(db)
  }

  async revision(db: SqlDatabase = this.db): Promise<number> {
    const r = await db.get<{ revision: number }>('select revision from definition_revision where id = 1')
    return Number(r?.revision ?? 0)
  }

  /** The current (not deleted) definitions, by kind and name. */
  async current(db: SqlDatabase = this.db): Promise<StoredDefinition[]> {
    const rows = await db.all<Row>('select * from definition_head where deleted = 0 order by kind, name')
    return rows.map(fromRow)
  }

  async get(kind: Kind, name: string): Promise<StoredDefinition | undefined> {
    const r = await this.db.get<Row>(
      'select * from definition_head where kind = ? and name = ? and deleted = 0',
      [kind, name],
    )
    return r ? fromRow(r) : undefined
  }

  async versions(kind: Kind, name: string): Promise<StoredDefinition[]> {
    const rows = await this.db.all<Row>(
      'select * from definition_versions where kind = ? and name = ? order by version desc',
      [kind, name],
    )
    return rows.map(fromRow)
  }

  async version(kind: Kind, name: string, version: number): Promise<StoredDefinition | undefined> {
    const r = await this.db.get<Row>(
      'select * from definition_versions where kind = ? and name = ? and version = ?',
      [kind, name, version],
    )
    return r ? fromRow(r) : undefined
  }

  /**
   * Runs `fn` in one transaction that holds the definitions lock: it reads the current state,
   * decides the changes (validating them) and returns them; they are written together, or not at all.
   */
  async change<T>(
    actor: string,
    fn: (
      current: StoredDefinition[],
    ) => Promise<{ changes: Change[]; result: T }> | { changes: Change[]; result: T },
  ): Promise<{ write: WriteResult; result: T }> {
    return this.db.transaction(async (tx) => {
      if (tx.dialect === 'postgres')
        await tx.run('select revision from definition_revision where id = 1 for update')
      const current = await this.current(tx)
      const { changes, result } = await fn(current)
      const write = await this.#write(tx, changes, actor)
      return { write, result }
    })
  }

  async #write(tx: SqlDatabase, changes: Change[], actor: string): Promise<WriteResult> {
    const written: WriteResult['written'] = []
    const now = Date.now()
    for (const ch of changes) {
      const head = await tx.get<Row>('select * from definition_head where kind = ? and name = ?', [
        ch.kind,
        ch.name,
      ])
      const spec = ch.spec === null ? null : canonicalJson(ch.spec)
      const deleted = ch.spec === null
      if (head) {
        const same = deleted ? Boolean(head.deleted) : !head.deleted && head.spec === spec
        if (same) continue
      } else if (deleted) continue
      const version = head ? Number(head.version) + 1 : 1
      const params = [ch.kind, ch.name, version, spec, deleted ? 1 : 0, now, actor]
      await tx.run(
        'insert into definition_versions (kind, name, version, spec, deleted, created_at, created_by) values (?, ?, ?, ?, ?, ?, ?)',
        params,
      )
      if (head) {
        await tx.run(
          'update definition_head set version = ?, spec = ?, deleted = ?, created_at = ?, created_by = ? where kind = ? and name = ?',
          [version, spec, deleted ? 1 : 0, now, actor, ch.kind, ch.name],
        )
      } else {
        await tx.run(
          'insert into definition_head (kind, name, version, spec, deleted, created_at, created_by) values (?, ?, ?, ?, ?, ?, ?)',
          params,
        )
      }
      written.push({ kind: ch.kind, name: ch.name, version, deleted })
    }
    if (written.length > 0)
      await tx.run('update definition_revision set revision = revision + 1 where id = 1')
    return { revision: await this.revision(tx), written }
  }
}
