/**
 * The analytical data store: the audience of scheduled campaigns only. One interface, two
 * adapters: an embedded DuckDB file (the default) and PostgreSQL.
 *
 * Audience queries are read-only: a single SELECT (or WITH … SELECT) statement, checked before it
 * runs; PostgreSQL also runs it inside a READ ONLY transaction. Rows stream in batches, so memory
 * stays flat whatever the audience size.
 */
import { riffleError } from '../errors.js'

/** A column's portable kind, from which the scheduler types `row` values for CEL. */
export type ColumnKind = 'integer' | 'number' | 'string' | 'boolean' | 'timestamp' | 'other'

export interface ColumnInfo {
  name: string
  /** The backend's own type name, e.g. `BIGINT`, `DOUBLE`, `character varying`. */
  type: string
  kind: ColumnKind
}

export interface TableInfo {
  name: string
  columns: ColumnInfo[]
}

export interface QueryBatch {
  columns: ColumnInfo[]
  rows: Array<Record<string, unknown>>
}

export interface LoadProgress {
  /** Rows loaded so far (an estimate while DuckDB reads). */
  rows: number
  /** 0–100 where known; -1 when unknown. */
  percent: number
}

export interface LoadOptions {
  /** Replace the table when it exists (default true); false appends. */
  replace?: boolean
  onProgress?: (p: LoadProgress) => void
}

export interface QueryOptions {
  /** Rows per batch (default 2,000). */
  batchSize?: number
}

export interface DataStore {
  readonly kind: 'duckdb' | 'postgres'
  /** Where the data lives, without credentials. */
  readonly description: string
  /** Loads a CSV or Parquet file (by extension: .csv, .tsv, .csv.gz, .parquet) into a table. */
  load(table: string, file: string, opts?: LoadOptions): Promise<{ rows: number }>
  /**
   * Runs a read-only query and yields its rows in batches. The first batch is yielded even when
   * there are no rows, so that the columns are known.
   */
  query(sql: string, opts?: QueryOptions): AsyncGenerator<QueryBatch>
  /** Tables, with their columns and types. */
  tables(): Promise<TableInfo[]>
  ping(): Promise<void>
  close(): Promise<void>
}

export const DEFAULT_BATCH = 2000

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/

/** A table name as a quoted SQL identifier, or RIFFLE_BAD_REQUEST naming the problem. */
export function quoteTable(name: string): string {
  if (!TABLE_NAME.test(name))
    throw riffleError(
      'RIFFLE_BAD_REQUEST',
      `invalid table name "${name}": use letters, digits and _ (optionally schema.table)`,
    )
  return name
    .split('.')
    .map((p) => `"${p}"`)
    .join('.')
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}

/**
 * The cheap, portable part of the read-only check: one statement that starts with SELECT or
 * WITH. Each adapter then asks its own parser (DuckDB) or runs it read-only (PostgreSQL).
 */
export function checkReadOnlySql(sql: string): string {
  const s = sql.trim().replace(/;\s*$/, '')
  if (!/^(select|with|\()\s*/i.test(s))
    throw riffleError(
      'RIFFLE_BAD_REQUEST',
      `the audience must be a read-only SQL query (a single SELECT or WITH … SELECT); got "${preview(sql)}"`,
    )
  return s
}

export function preview(sql: string): string {
  const one = sql.replace(/\s+/g, ' ').trim()
  return one.length > 80 ? `${one.slice(0, 77)}…` : one
}

/** A query that failed in the data store, with the store's own message. */
export function queryFailed(sql: string, e: unknown): Error {
  if (e instanceof Error && 'code' in e && String((e as { code: unknown }).code).startsWith('RIFFLE_'))
    return e
  const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]
  return riffleError('RIFFLE_BAD_REQUEST', `data store query failed: ${msg} (in "${preview(sql)}")`, {
    cause: e,
  })
}

export function kindOfType(type: string): ColumnKind {
  const t = type.toLowerCase()
  if (
    /^(tinyint|smallint|integer|int|bigint|hugeint|utinyint|usmallint|uinteger|ubigint|int2|int4|int8)\b/.test(
      t,
    )
  )
    return 'integer'
  if (/^(double|float|real|decimal|numeric|float4|float8|double precision)/.test(t)) return 'number'
  if (/^(varchar|text|character|char|uuid|enum|string|bpchar|name)/.test(t)) return 'string'
  if (/^bool/.test(t)) return 'boolean'
  if (/^(timestamp|date)/.test(t)) return 'timestamp'
  return 'other'
}

export function fileFormat(file: string): 'csv' | 'parquet' {
  const f = file.toLowerCase()
  if (f.endsWith('.parquet') || f.endsWith('.pq')) return 'parquet'
  if (/\.(csv|tsv|txt)(\.gz|\.zst)?$/.test(f)) return 'csv'
  throw riffleError(
    'RIFFLE_BAD_REQUEST',
    `cannot tell the format of "${file}": use a .csv, .tsv, .csv.gz or .parquet file`,
  )
}

export interface DataStoreOptions {
  /** PostgreSQL: accept a database user that can reach the server's files (see PostgresDataStore). */
  allowFileAccess?: boolean
}

export async function openDataStore(
  url: string,
  dataDir: string,
  opts: DataStoreOptions = {},
): Promise<DataStore> {
  if (url.startsWith('duckdb:')) {
    const { DuckDbDataStore } = await import('./duckdb.js')
    const rest = url.slice('duckdb:'.length)
    const { join } = await import('node:path')
    return new DuckDbDataStore(rest === '' ? join(dataDir, 'datastore.duckdb') : rest)
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const { PostgresDataStore } = await import('./postgres.js')
    return PostgresDataStore.open(url, opts)
  }
  throw riffleError(
    'RIFFLE_CONFIG',
    `RIFFLE_DATASTORE_URL: unsupported data store URL scheme in "${url.split(':')[0]}:"`,
  )
}
