import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { riffleError } from '../errors.js'
import { checkpointInBackground, release } from './checkpointer.js'
import { CONNECTION_PRAGMAS } from './pragmas.js'
import Sqlite from './sqlite-driver.js'

export type Dialect = 'sqlite' | 'postgres'
export type Params = readonly unknown[]

/**
 * The small SQL surface Riffle's own tables need (definitions, keys, history, runs), over the
 * embedded SQLite file or PostgreSQL. Statements use `?` placeholders; PostgreSQL gets `$n`.
 */
export interface SqlDatabase {
  readonly dialect: Dialect
  /** Where the data lives, without credentials, for logs and messages. */
  readonly description: string
  all<T = Record<string, unknown>>(sql: string, params?: Params): Promise<T[]>
  get<T = Record<string, unknown>>(sql: string, params?: Params): Promise<T | undefined>
  run(sql: string, params?: Params): Promise<{ changes: number }>
  /** Runs `fn` in one transaction: all of it is applied, or none. */
  transaction<T>(fn: (tx: SqlDatabase) => Promise<T>): Promise<T>
  /** Applies each named migration once, in order. */
  migrate(component: string, steps: MigrationStep[]): Promise<void>
  ping(): Promise<void>
  close(): Promise<void>
}

/** One schema change; `sql` may be dialect-specific. */
export interface MigrationStep {
  id: string
  sql: string | Record<Dialect, string>
}

function toPg(sql: string): string {
  let n = 0
  return sql.replace(/\?/g, () => `$${++n}`)
}

function unavailable(description: string, cause: unknown): Error {
  const msg = cause instanceof Error ? cause.message : String(cause)
  return riffleError('RIFFLE_STORE_UNAVAILABLE', `database ${description} cannot be reached: ${msg}`, {
    cause,
  })
}

const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  '57P01',
  '57P03',
])

abstract class Base implements SqlDatabase {
  abstract readonly dialect: Dialect
  abstract readonly description: string
  abstract all<T>(sql: string, params?: Params): Promise<T[]>
  abstract run(sql: string, params?: Params): Promise<{ changes: number }>
  abstract transaction<T>(fn: (tx: SqlDatabase) => Promise<T>): Promise<T>
  abstract close(): Promise<void>

  async get<T>(sql: string, params?: Params): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0]
  }

  async ping(): Promise<void> {
    await this.all('select 1 as one')
  }

  async migrate(component: string, steps: MigrationStep[]): Promise<void> {
    await this.run(
      'create table if not exists riffle_migrations (component text not null, id text not null, applied_at bigint not null, primary key (component, id))',
    )
    await this.transaction(async (tx) => {
      if (tx.dialect === 'postgres') await tx.run('lock table riffle_migrations in exclusive mode')
      const done = new Set(
        (
          await tx.all<{ id: string }>('select id from riffle_migrations where component = ?', [component])
        ).map((r) => r.id),
      )
      for (const step of steps) {
        if (done.has(step.id)) continue
        const sql = typeof step.sql === 'string' ? step.sql : step.sql[tx.dialect]
        for (const statement of sql
          .split(/;\s*\n/)
          .map((s) => s.trim())
          .filter(Boolean))
          await tx.run(statement)
        await tx.run('insert into riffle_migrations (component, id, applied_at) values (?, ?, ?)', [
          component,
          step.id,
          Date.now(),
        ])
      }
    })
  }
}

export class SqliteDatabase extends Base {
  readonly dialect = 'sqlite' as const
  readonly description: string
  readonly #db: Sqlite.Database
  #lock: Promise<unknown> = Promise.resolve()
  #inTx = false

  constructor(file: string) {
    super()
    this.description = `sqlite:${file}`
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true })
    this.#db = new Sqlite(file)
    for (const p of CONNECTION_PRAGMAS) this.#db.pragma(p)
    this.#db.defaultSafeIntegers(false)
    this.#file = file
    checkpointInBackground(file)
  }

  readonly #file: string

  /** The database file (`:memory:` for an in-memory database). */
  get file(): string {
    return this.#file
  }

  /** The raw handle, for hot paths that batch many statements synchronously. */
  get handle(): Sqlite.Database {
    return this.#db
  }

  /**
   * Runs `fn` synchronously on the raw handle once no transaction of this database is open, for hot
   * paths that batch many statements in one native transaction.
   */
  async withHandle<T>(fn: (db: Sqlite.Database) => T): Promise<T> {
    while (this.#inTx) await this.#lock.catch(() => {})
    return fn(this.#db)
  }

  async #idle(): Promise<void> {
    if (!this.#inTx) return
    await this.#lock.catch(() => {})
    return this.#idle()
  }

  async all<T>(sql: string, params: Params = []): Promise<T[]> {
    await this.#idle()
    return this.allNow<T>(sql, params)
  }

  /**
   * Prepared statements by their text: preparing costs tens of microseconds, and the hot paths
   * (a history lookup per engine batch, a run's progress per scheduler batch) repeat theirs.
   */
  readonly #statements = new Map<string, Sqlite.Statement>()

  #prepare(sql: string): Sqlite.Statement {
    let stmt = this.#statements.get(sql)
    if (!stmt) {
      stmt = this.#db.prepare(sql)
      // statements built with a varying number of placeholders must not grow it without bound
      if (this.#statements.size >= 256) this.#statements.clear()
      this.#statements.set(sql, stmt)
    }
    return stmt
  }

  allNow<T>(sql: string, params: Params = []): T[] {
    const stmt = this.#prepare(sql)
    if (!stmt.reader) {
      stmt.run(...(params as unknown[]))
      return []
    }
    return stmt.all(...(params as unknown[])) as T[]
  }

  async run(sql: string, params: Params = []): Promise<{ changes: number }> {
    await this.#idle()
    return this.runNow(sql, params)
  }

  runNow(sql: string, params: Params = []): { changes: number } {
    const r = this.#prepare(sql).run(...(params as unknown[]))
    return { changes: r.changes }
  }

  transaction<T>(fn: (tx: SqlDatabase) => Promise<T>): Promise<T> {
    const next = this.#lock
      .catch(() => {})
      .then(async () => {
        this.#inTx = true
        this.#db.exec('begin immediate')
        try {
          const result = await fn(new SqliteTx(this))
          this.#db.exec('commit')
          return result
        } catch (e) {
          if (this.#db.inTransaction) this.#db.exec('rollback')
          throw e
        } finally {
          this.#inTx = false
        }
      })
    this.#lock = next
    return next
  }

  async close(): Promise<void> {
    await this.#lock.catch(() => {})
    release(this.#file)
    this.#db.close()
  }
}

/** The view of a SQLite database inside its transaction: statements run at once, without waiting. */
class SqliteTx extends Base {
  readonly dialect = 'sqlite' as const
  readonly description: string
  constructor(private readonly db: SqliteDatabase) {
    super()
    this.description = db.description
  }
  async all<T>(sql: string, params?: Params): Promise<T[]> {
    return this.db.allNow<T>(sql, params)
  }
  async run(sql: string, params?: Params): Promise<{ changes: number }> {
    return this.db.runNow(sql, params)
  }
  transaction<T>(fn: (tx: SqlDatabase) => Promise<T>): Promise<T> {
    return fn(this)
  }
  async close(): Promise<void> {}
}

type Queryable = pg.Pool | pg.PoolClient

class PostgresDatabase extends Base {
  readonly dialect = 'postgres' as const
  readonly description: string

  constructor(
    private readonly q: Queryable,
    description: string,
    private readonly pool?: pg.Pool,
  ) {
    super()
    this.description = description
  }

  async all<T>(sql: string, params: Params = []): Promise<T[]> {
    try {
      const r = await this.q.query(toPg(sql), params as unknown[])
      return r.rows as T[]
    } catch (e) {
      throw this.#wrap(e)
    }
  }

  async run(sql: string, params: Params = []): Promise<{ changes: number }> {
    try {
      const r = await this.q.query(toPg(sql), params as unknown[])
      return { changes: r.rowCount ?? 0 }
    } catch (e) {
      throw this.#wrap(e)
    }
  }

  #wrap(e: unknown): unknown {
    const code = (e as { code?: string }).code
    if (code && CONNECTION_ERRORS.has(code)) return unavailable(this.description, e)
    return e
  }

  async transaction<T>(fn: (tx: SqlDatabase) => Promise<T>): Promise<T> {
    if (!this.pool) return fn(this)
    let client: pg.PoolClient
    try {
      client = await this.pool.connect()
    } catch (e) {
      throw unavailable(this.description, e)
    }
    try {
      await client.query('begin')
      const result = await fn(new PostgresDatabase(client, this.description))
      await client.query('commit')
      return result
    } catch (e) {
      await client.query('rollback').catch(() => {})
      throw e
    } finally {
      client.release()
    }
  }

  async close(): Promise<void> {
    await this.pool?.end()
  }
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@')
  }
}

/**
 * Opens Riffle's own database. `sqlite:` alone means `<dataDir>/<defaultFile>`; `sqlite:PATH` a
 * given file (`sqlite::memory:` for a throwaway one); `postgres://…` a PostgreSQL server.
 */
export async function openDatabase(
  url: string,
  dataDir: string,
  defaultFile = 'riffle.db',
): Promise<SqlDatabase> {
  if (url.startsWith('sqlite:')) {
    const rest = url.slice('sqlite:'.length)
    const file = rest === '' ? join(dataDir, defaultFile) : rest
    return new SqliteDatabase(file)
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const pool = new pg.Pool({
      connectionString: url,
      max: 10,
      connectionTimeoutMillis: 5000,
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          oid === 20
            ? (v: string) => Number(v)
            : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    })
    pool.on('error', () => {}) // idle-client errors surface on the next query instead of crashing the process
    const db = new PostgresDatabase(pool, redactUrl(url), pool)
    try {
      await db.ping()
    } catch (e) {
      await pool.end().catch(() => {})
      throw e instanceof Error && 'code' in e && String((e as { code: unknown }).code).startsWith('RIFFLE_')
        ? e
        : unavailable(redactUrl(url), e)
    }
    return db
  }
  throw riffleError('RIFFLE_CONFIG', `RIFFLE_DATABASE_URL: unsupported database URL ${redactUrl(url)}`)
}
