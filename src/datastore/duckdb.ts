/**
 * The embedded data store: one DuckDB file. It is opened for each operation and closed when the
 * last one ends, so that `riffle datastore load` from another process can take the file between
 * runs (DuckDB lets one process at a time open a file for writing).
 *
 * The file's DuckDB instance runs with `enable_external_access = false` and a locked configuration:
 * audience SQL (and `riffle datastore query`) reads the data store's tables and nothing else — no
 * files (read_csv, read_parquet, COPY, ATTACH, glob), no network, no extension installs. Loading a
 * file is the one way in: a separate in-memory DuckDB reads it and its chunks are appended to the
 * file's table, as the PostgreSQL backend does.
 */
import { randomUUID } from 'node:crypto'
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
  quoteIdent,
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
        return DuckDBInstance.create(this.file, {
          threads: '4',
          enable_external_access: 'false',
          autoinstall_known_extensions: 'false',
          lock_configuration: 'true',
        })
      })()
      const instance = await this.#instance.catch((e) => {
        this.#instance = undefined
        const msg = (e as Error).message
        const holder = /\(PID (\d+)\)/.exec(msg)?.[1]
        throw riffleError(
          'RIFFLE_STORE_UNAVAILABLE',
          /lock/i.test(msg)
            ? `the data store file ${this.file} is open in another process${holder ? ` (PID ${holder})` : ''}, and DuckDB lets one process at a time open it; if that is \`riffle start\`, load through it (\`riffle datastore load\` does when RIFFLE_API_KEY holds a key with the admin scope) or stop it first`
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
    const parts = table.split('.')
    const bare = parts.pop()!
    const schema = parts[0]
    // The file is read by its own in-memory DuckDB, which may read files; the data store's may not.
    const fileReader = await DuckDBInstance.create(':memory:', { threads: '2' })
    const rconn = await fileReader.connect()
    const conn = await this.#acquire()
    const staging = `_riffle_load_${randomUUID().replace(/-/g, '').slice(0, 12)}`
    const stagingRef = schema ? `"${schema}"."${staging}"` : `"${staging}"`
    let staged = false
    let rows = 0
    const timer = opts.onProgress
      ? setInterval(() => {
          const p = rconn.progress
          opts.onProgress!({ rows, percent: p.percentage >= 0 ? Math.min(99, p.percentage) : -1 })
        }, 250)
      : undefined
    try {
      let result: Awaited<ReturnType<DuckDBConnection['stream']>>
      try {
        result = await rconn.stream(`select * from ${reader}`)
      } catch (e) {
        const msg = (e as Error).message.split('\n')[0]
        throw riffleError('RIFFLE_BAD_REQUEST', `cannot load ${file} into ${table}: ${msg}`, { cause: e })
      }
      const names = result.columnNames()
      const types = result.columnTypes().map((t) => t.toString())
      await conn.run(
        `create table ${stagingRef} (${names.map((n, i) => `${quoteIdent(n)} ${types[i]}`).join(', ')})`,
      )
      staged = true
      const appender = await conn.createAppender(staging, schema ?? null)
      try {
        for (;;) {
          let chunk: Awaited<ReturnType<typeof result.fetchChunk>>
          try {
            chunk = await result.fetchChunk()
          } catch (e) {
            const msg = (e as Error).message.split('\n')[0]
            throw riffleError('RIFFLE_BAD_REQUEST', `cannot load ${file} into ${table}: ${msg}`, { cause: e })
          }
          if (!chunk || chunk.rowCount === 0) break
          appender.appendDataChunk(chunk)
          rows += chunk.rowCount
        }
        appender.flushSync()
      } finally {
        appender.closeSync()
      }
      const exists =
        (
          await conn.runAndReadAll(
            `select count(*)::integer as n from information_schema.tables where table_name = ? and table_schema = ?`,
            [bare, schema ?? 'main'],
          )
        ).getRowObjectsJS()[0]?.n !== 0
      await conn.run('begin transaction')
      try {
        if ((opts.replace ?? true) || !exists) {
          await conn.run(`drop table if exists ${target}`)
          await conn.run(`alter table ${stagingRef} rename to ${quoteIdent(bare)}`)
        } else {
          try {
            await conn.run(`insert into ${target} select * from ${stagingRef}`)
          } catch (e) {
            const msg = (e as Error).message.split('\n')[0]
            throw riffleError('RIFFLE_BAD_REQUEST', `cannot append ${file} to ${table}: ${msg}`, { cause: e })
          }
          await conn.run(`drop table ${stagingRef}`)
        }
        await conn.run('commit')
        staged = false
      } catch (e) {
        await conn.run('rollback').catch(() => {})
        throw e
      }
      opts.onProgress?.({ rows, percent: 100 })
      return { rows }
    } finally {
      if (timer) clearInterval(timer)
      if (staged) await conn.run(`drop table if exists ${stagingRef}`).catch(() => {})
      this.#release(conn)
      rconn.closeSync()
      fileReader.closeSync()
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
        throw externalAccess(e) ?? queryFailed(text, e)
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
          throw externalAccess(e) ?? queryFailed(text, e)
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
            and table_name not like '\\_riffle\\_load\\_%' escape '\\'
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

/** The refusal of a file or network read, as a sentence that says what is allowed instead. */
function externalAccess(e: unknown): Error | undefined {
  const msg = e instanceof Error ? e.message : String(e)
  const m = /Cannot access (?:file|directory) "([^"]*)" - file system operations are disabled/.exec(msg)
  if (!m) return undefined
  return riffleError(
    'RIFFLE_BAD_REQUEST',
    `the audience may read only the data store's tables, not files or the network: it tried to read "${m[1]}"; load a file with \`riffle datastore load TABLE FILE\` and select from the table`,
    { cause: e },
  )
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
