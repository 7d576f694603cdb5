/**
 * The data store on PostgreSQL. Audience queries run in a READ ONLY transaction through a
 * server-side cursor, FETCHed in batches. Files are read by an in-memory DuckDB (which reads CSV
 * and Parquet with typed columns) and inserted in batches of whole columns (`unnest`).
 */
import { DuckDBInstance, JSDuckDBValueConverter } from '@duckdb/node-api'
import pg from 'pg'
import { riffleError } from '../errors.js'
import { groupTables } from './duckdb.js'
import {
  type ColumnInfo,
  type ColumnKind,
  checkReadOnlySql,
  type DataStore,
  DEFAULT_BATCH,
  fileFormat,
  type LoadOptions,
  type QueryBatch,
  type QueryOptions,
  queryFailed,
  quoteIdent,
  quoteTable,
  type TableInfo,
} from './store.js'

const OID_KIND = new Map<number, [string, ColumnKind]>([
  [20, ['bigint', 'integer']],
  [21, ['smallint', 'integer']],
  [23, ['integer', 'integer']],
  [700, ['real', 'number']],
  [701, ['double precision', 'number']],
  [1700, ['numeric', 'number']],
  [25, ['text', 'string']],
  [1043, ['character varying', 'string']],
  [1042, ['character', 'string']],
  [19, ['name', 'string']],
  [2950, ['uuid', 'string']],
  [16, ['boolean', 'boolean']],
  [1082, ['date', 'timestamp']],
  [1114, ['timestamp without time zone', 'timestamp']],
  [1184, ['timestamp with time zone', 'timestamp']],
])

const TYPES = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === 20) return (v: string) => BigInt(v)
    if (oid === 1700) return (v: string) => Number(v)
    return pg.types.getTypeParser(oid, format as 'text')
  }) as typeof pg.types.getTypeParser,
}

function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return 'postgres://…'
  }
}

function pgTypeOf(duck: string): string {
  const t = duck.toUpperCase()
  if (/^(TINYINT|SMALLINT|INTEGER|UTINYINT|USMALLINT)$/.test(t)) return 'integer'
  if (/^(BIGINT|UINTEGER|HUGEINT)$/.test(t)) return 'bigint'
  if (/^(DOUBLE|FLOAT)$/.test(t)) return 'double precision'
  if (t.startsWith('DECIMAL')) return 'numeric'
  if (t === 'BOOLEAN') return 'boolean'
  if (t === 'DATE') return 'date'
  if (t === 'TIMESTAMP WITH TIME ZONE') return 'timestamptz'
  if (t.startsWith('TIMESTAMP')) return 'timestamp'
  return 'text'
}

export class PostgresDataStore implements DataStore {
  readonly kind = 'postgres' as const

  private constructor(
    private readonly pool: pg.Pool,
    readonly description: string,
    private readonly allowFileAccess: boolean,
  ) {}

  static async open(url: string, opts: { allowFileAccess?: boolean } = {}): Promise<PostgresDataStore> {
    const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5000, types: TYPES })
    pool.on('error', () => {})
    return new PostgresDataStore(pool, redact(url), opts.allowFileAccess ?? false)
  }

  #fileAccessChecked = false

  /**
   * A READ ONLY transaction keeps audience SQL from writing, but not from reading the database
   * server's files: `pg_read_file('/etc/passwd')` works for a superuser or a member of
   * pg_read_server_files. Such a user is refused (once checked, per process) unless
   * RIFFLE_DATASTORE_ALLOW_FILE_ACCESS says the risk is accepted.
   */
  async #checkFileAccess(client: pg.PoolClient): Promise<void> {
    if (this.allowFileAccess || this.#fileAccessChecked) return
    const r = await client.query<{ name: string; super: boolean; roles: string[] }>(
      `select current_user as name, r.rolsuper as super,
              array(select g from unnest(array['pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program']) g
                    where pg_has_role(current_user, g, 'USAGE')) as roles
         from pg_roles r where r.rolname = current_user`,
    )
    const row = r.rows[0]
    if (row && (row.super || row.roles.length > 0))
      throw riffleError(
        'RIFFLE_CONFIG',
        `the data store's PostgreSQL user "${row.name}" ${row.super ? 'is a superuser' : `is a member of ${row.roles.join(', ')}`}, so SQL run as it can read files on the database server; connect as a user without those rights (it needs only SELECT on the audience tables), or set RIFFLE_DATASTORE_ALLOW_FILE_ACCESS=true to accept the risk`,
      )
    this.#fileAccessChecked = true
  }

  async #client(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect()
    } catch (e) {
      throw riffleError(
        'RIFFLE_STORE_UNAVAILABLE',
        `data store ${this.description} cannot be reached: ${(e as Error).message}`,
        { cause: e },
      )
    }
  }

  async load(table: string, file: string, opts: LoadOptions = {}): Promise<{ rows: number }> {
    const target = quoteTable(table)
    const format = fileFormat(file)
    const reader =
      format === 'parquet'
        ? `read_parquet('${file.replace(/'/g, "''")}')`
        : `read_csv('${file.replace(/'/g, "''")}')`
    const duck = await DuckDBInstance.create(':memory:', { threads: '2' })
    const dconn = await duck.connect()
    const client = await this.#client()
    let rows = 0
    try {
      let total = -1
      try {
        total = Number(
          (await dconn.runAndReadAll(`select count(*) as n from ${reader}`)).getRowObjectsJS()[0]!.n,
        )
      } catch (e) {
        throw riffleError(
          'RIFFLE_BAD_REQUEST',
          `cannot read ${file}: ${(e as Error).message.split('\n')[0]}`,
          {
            cause: e,
          },
        )
      }
      const result = await dconn.stream(`select * from ${reader}`)
      const names = result.columnNames()
      const types = result.columnTypes().map((t) => pgTypeOf(t.toString()))
      await client.query('begin')
      if (opts.replace ?? true) await client.query(`drop table if exists ${target}`)
      await client.query(
        `create table if not exists ${target} (${names.map((n, i) => `${quoteIdent(n)} ${types[i]}`).join(', ')})`,
      )
      const insert = `insert into ${target} (${names.map(quoteIdent).join(', ')}) select * from unnest(${types
        .map((t, i) => `$${i + 1}::${t}[]`)
        .join(', ')})`
      let pending: unknown[][] = names.map(() => [])
      const flush = async () => {
        if (pending[0]!.length === 0) return
        await client.query(insert, pending)
        rows += pending[0]!.length
        pending = names.map(() => [])
        opts.onProgress?.({ rows, percent: total > 0 ? Math.floor((rows / total) * 100) : -1 })
      }
      for (;;) {
        const chunk = await result.fetchChunk()
        if (!chunk || chunk.rowCount === 0) break
        const cols = chunk.convertColumns(JSDuckDBValueConverter)
        cols.forEach((col, i) => {
          const target = pending[i]!
          for (const v of col) target.push(typeof v === 'bigint' ? v.toString() : v)
        })
        if (pending[0]!.length >= 10_000) await flush()
      }
      await flush()
      await client.query('commit')
      opts.onProgress?.({ rows, percent: 100 })
      return { rows }
    } catch (e) {
      await client.query('rollback').catch(() => {})
      if (e instanceof Error && 'code' in e && String(e.code).startsWith('RIFFLE_')) throw e
      throw riffleError('RIFFLE_BAD_REQUEST', `cannot load ${file} into ${table}: ${(e as Error).message}`, {
        cause: e,
      })
    } finally {
      client.release()
      dconn.closeSync()
      duck.closeSync()
    }
  }

  async *query(sql: string, opts: QueryOptions = {}): AsyncGenerator<QueryBatch> {
    const text = checkReadOnlySql(sql)
    const batchSize = opts.batchSize ?? DEFAULT_BATCH
    const client = await this.#client()
    let open = false
    try {
      await this.#checkFileAccess(client)
      try {
        await client.query('begin transaction isolation level repeatable read read only')
        open = true
        // a parameterless DECLARE takes exactly one statement; a second one is a syntax error
        await client.query(`declare riffle_audience no scroll cursor for ${text}`)
      } catch (e) {
        throw queryFailed(text, e)
      }
      let columns: ColumnInfo[] | undefined
      let yielded = false
      for (;;) {
        let r: pg.QueryResult
        try {
          r = await client.query(`fetch ${batchSize} from riffle_audience`)
        } catch (e) {
          throw queryFailed(text, e)
        }
        columns ??= r.fields.map((f) => {
          const [type, kind] = OID_KIND.get(f.dataTypeID) ?? [`oid ${f.dataTypeID}`, 'other' as ColumnKind]
          return { name: f.name, type, kind }
        })
        if (r.rows.length === 0) {
          if (!yielded) yield { columns, rows: [] }
          break
        }
        yielded = true
        yield { columns, rows: r.rows }
        if (r.rows.length < batchSize) break
      }
      await client.query('commit')
      open = false
    } finally {
      if (open) await client.query('rollback').catch(() => {})
      client.release()
    }
  }

  async tables(): Promise<TableInfo[]> {
    const client = await this.#client()
    try {
      const r = await client.query(
        `select case when table_schema = 'public' then table_name else table_schema || '.' || table_name end as t,
                column_name as c, data_type as d
           from information_schema.columns
          where table_schema not in ('information_schema', 'pg_catalog')
          order by 1, ordinal_position`,
      )
      return groupTables(r.rows as Array<{ t: string; c: string; d: string }>)
    } finally {
      client.release()
    }
  }

  async ping(): Promise<void> {
    const client = await this.#client()
    client.release()
  }

  async close(): Promise<void> {
    await this.pool.end()
  }
}
