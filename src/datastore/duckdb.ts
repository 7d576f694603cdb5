/**
 * The embedded data store: one DuckDB file. It is opened for each operation and closed when the
 * last one ends, so that `riffle datastore load` from another process can take the file between
 * runs (DuckDB lets one process at a time open a file for writing).
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import {
  type DuckDBConnection,
  DuckDBInstance,
  JSDuckDBValueConverter,
  StatementType,
} from '@duckdb/node-api'
import { riffleError } from '../errors.js'
import {
  type ColumnInfo,
  checkReadOnlySql,
  type DataStore,
  DEFAULT_BATCH,
  fileFormat,
  kindOfType,
  type LoadOptions,
  type QueryBatch,
  type QueryOptions,
  queryFailed,
  quoteTable,
  type TableInfo,
} from './store.js'

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`

export class DuckDbDataStore implements DataStore {
  readonly kind = 'duckdb' as const
  readonly description: string
  #instance: Promise<DuckDBInstance> | undefined
  #users = 0

  constructor(readonly file: string) {
    this.description = `duckdb:${file}`
  }

  async #acquire(): Promise<DuckDBConnection> {
    this.#users++
    try {
      this.#instance ??= (async () => {
        if (this.file !== ':memory:') mkdirSync(dirname(this.file), { recursive: true })
        return DuckDBInstance.create(this.file, { threads: '4' })
      })()
      const instance = await this.#instance.catch((e) => {
        this.#instance = undefined
        const msg = (e as Error).message
        throw riffleError(
          'RIFFLE_STORE_UNAVAILABLE',
          /lock/i.test(msg)
            ? `the data store file ${this.file} is in use by another process: ${msg.split('\n')[0]}`
            : `the data store ${this.file} cannot be opened: ${msg.split('\n')[0]}`,
          { cause: e },
        )
      })
      return await instance.connect()
    } catch (e) {
      this.#release()
      throw e
    }
  }

  #release(conn?: DuckDBConnection): void {
    conn?.closeSync()
    if (--this.#users === 0 && this.#instance) {
      const p = this.#instance
      this.#instance = undefined
      void p.then((i) => i.closeSync()).catch(() => {})
    }
  }

  async load(table: string, file: string, opts: LoadOptions = {}): Promise<{ rows: number }> {
    const target = quoteTable(table)
    const format = fileFormat(file)
    const reader = format === 'parquet' ? `read_parquet(${sqlString(file)})` : `read_csv(${sqlString(file)})`
    const conn = await this.#acquire()
    const timer = opts.onProgress
      ? setInterval(() => {
          const p = conn.progress
          opts.onProgress!({ rows: Number(p.rows_processed), percent: p.percentage })
        }, 250)
      : undefined
    try {
      const replace = opts.replace ?? true
      const exists =
        (
          await conn.runAndReadAll(
            'select count(*)::integer as n from information_schema.tables where table_name = ?',
            [table.split('.').pop()!],
          )
        ).getRowObjectsJS()[0]?.n !== 0
      const sql =
        replace || !exists
          ? `create or replace table ${target} as select * from ${reader}`
          : `insert into ${target} select * from ${reader}`
      let r: Awaited<ReturnType<DuckDBConnection['run']>>
      try {
        r = await conn.run(sql)
      } catch (e) {
        const msg = (e as Error).message.split('\n')[0]
        throw riffleError('RIFFLE_BAD_REQUEST', `cannot load ${file} into ${table}: ${msg}`, { cause: e })
      }
      const rows =
        replace || !exists
          ? Number((await conn.runAndReadAll(`select count(*) as n from ${target}`)).getRowObjectsJS()[0]!.n)
          : Number(r.rowsChanged)
      opts.onProgress?.({ rows, percent: 100 })
      return { rows }
    } finally {
      if (timer) clearInterval(timer)
      this.#release(conn)
    }
  }

  async *query(sql: string, opts: QueryOptions = {}): AsyncGenerator<QueryBatch> {
    const text = checkReadOnlySql(sql)
    const batchSize = opts.batchSize ?? DEFAULT_BATCH
    const conn = await this.#acquire()
    try {
      let result: Awaited<ReturnType<DuckDBConnection['stream']>>
      try {
        const extracted = await conn.extractStatements(text)
        if (extracted.count !== 1)
          throw riffleError(
            'RIFFLE_BAD_REQUEST',
            `the audience must be a single SQL statement; this has ${extracted.count}`,
          )
        const prepared = await extracted.prepare(0)
        if (prepared.statementType !== StatementType.SELECT)
          throw riffleError(
            'RIFFLE_BAD_REQUEST',
            `the audience must be a read-only SELECT; this is a ${StatementType[prepared.statementType]} statement`,
          )
        result = await prepared.stream()
      } catch (e) {
        throw queryFailed(text, e)
      }
      const names = result.columnNames()
      const columns: ColumnInfo[] = result.columnTypes().map((t, i) => {
        const type = t.toString()
        return { name: names[i]!, type, kind: kindOfType(type) }
      })
      let rows: Array<Record<string, unknown>> = []
      let yielded = false
      for (;;) {
        let chunk: Awaited<ReturnType<typeof result.fetchChunk>>
        try {
          chunk = await result.fetchChunk()
        } catch (e) {
          throw queryFailed(text, e)
        }
        if (!chunk || chunk.rowCount === 0) break
        const cols = chunk.convertColumns(JSDuckDBValueConverter)
        const n = chunk.rowCount
        for (let r = 0; r < n; r++) {
          const row: Record<string, unknown> = {}
          for (let c = 0; c < names.length; c++) row[names[c]!] = cols[c]![r]
          rows.push(row)
        }
        if (rows.length >= batchSize) {
          while (rows.length >= batchSize) {
            yielded = true
            yield { columns, rows: rows.slice(0, batchSize) }
            rows = rows.slice(batchSize)
          }
        }
      }
      if (rows.length || !yielded) yield { columns, rows }
    } finally {
      this.#release(conn)
    }
  }

  async tables(): Promise<TableInfo[]> {
    const conn = await this.#acquire()
    try {
      const r = await conn.runAndReadAll(
        `select case when table_schema = 'main' then table_name else table_schema || '.' || table_name end as t,
                column_name as c, data_type as d
           from information_schema.columns
          where table_schema not in ('information_schema', 'pg_catalog')
          order by t, ordinal_position`,
      )
      return groupTables(r.getRowObjectsJS() as Array<{ t: string; c: string; d: string }>)
    } finally {
      this.#release(conn)
    }
  }

  async ping(): Promise<void> {
    const conn = await this.#acquire()
    this.#release(conn)
  }

  async close(): Promise<void> {}
}

export function groupTables(rows: Array<{ t: string; c: string; d: string }>): TableInfo[] {
  const out: TableInfo[] = []
  for (const r of rows) {
    let t = out[out.length - 1]
    if (!t || t.name !== r.t) {
      t = { name: r.t, columns: [] }
      out.push(t)
    }
    t.columns.push({ name: r.c, type: r.d, kind: kindOfType(r.d) })
  }
  return out
}
