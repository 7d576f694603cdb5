/**
 * Loads a CSV or JSON Lines file into a pull collection, streaming: memory stays flat whatever the
 * file size. Each row is checked on its own, so a bad row is reported with its line number and
 * either skipped or stops the load; good rows go to the store in batches. Every write is a
 * field-level set keyed by the record key, so loading the same file again leaves the same data.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, extname } from 'node:path'
import { createInterface } from 'node:readline'
import { type CsvError, parse } from 'csv-parse'
import { riffleError } from '../errors.js'
import type { PullCatalog } from './catalog.js'
import type { PullStore, PullWrite } from './store.js'
import { checkWrite, type PullCollection } from './values.js'

export type LoadFormat = 'csv' | 'jsonl'

export interface LoadProgress {
  bytesRead: number
  totalBytes: number
  rows: number
  written: number
  bad: number
}

export interface LoadOptions {
  file: string
  /** Default: from the file's extension (.csv; .jsonl, .ndjson, .json). */
  format?: LoadFormat
  /** What a bad row does: `skip` it (reported) or `stop` the load there. */
  onError: 'skip' | 'stop'
  /** The column or property that holds the record key; default the collection's key name. */
  keyField?: string
  /** Recorded as the writer, `load:<id>`; default the file's name. */
  loadId?: string
  batchSize?: number
  onProgress?: (p: LoadProgress) => void
  onBadRow?: (line: number, message: string) => void
}

export interface LoadSummary {
  rows: number
  /** Rows written (a later row for the same key merges into the earlier). */
  written: number
  bad: number
  /** The line a stopping load stopped at. */
  stoppedAt: number | undefined
  elapsedMs: number
  writer: string
}

export function formatOf(file: string): LoadFormat {
  const ext = extname(file).toLowerCase()
  if (ext === '.csv') return 'csv'
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return 'jsonl'
  throw riffleError(
    'RIFFLE_BAD_REQUEST',
    `cannot tell the format of "${file}" from its extension: use --format csv|jsonl`,
  )
}

interface Row {
  line: number
  value?: Record<string, unknown>
  error?: string
}

async function* csvRows(
  stream: NodeJS.ReadableStream,
  c: PullCollection,
  keyField: string,
): AsyncGenerator<Row> {
  const parser = parse({
    columns: (header: string[]) => {
      const names = header.map((h) => h.trim())
      if (!names.includes(keyField))
        throw riffleError(
          'RIFFLE_BAD_REQUEST',
          `the header has no key column "${keyField}" (columns: ${names.join(', ')})`,
        )
      const unknown = names.filter((n) => n !== keyField && !c.fields.has(n))
      if (unknown.length)
        throw riffleError(
          'RIFFLE_BAD_REQUEST',
          `unknown column${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')} for collection "${c.name}" (fields: ${[...c.fields.keys()].join(', ')})`,
        )
      return names
    },
    bom: true,
    info: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
  })
  const skipped: Row[] = []
  parser.on('skip', (err: CsvError) => {
    skipped.push({ line: Number(err.lines ?? 0), error: err.message.replace(/^Invalid Record Length: /, '') })
  })
  stream.on('error', (e) => parser.destroy(e))
  stream.pipe(parser)
  for await (const item of parser as AsyncIterable<{
    record: Record<string, string>
    info: { lines: number }
  }>) {
    while (skipped.length) yield skipped.shift()!
    const value: Record<string, unknown> = {}
    for (const k in item.record) if (item.record[k] !== '') value[k] = item.record[k]
    yield { line: item.info.lines, value }
  }
  while (skipped.length) yield skipped.shift()!
}

async function* jsonlRows(stream: NodeJS.ReadableStream): AsyncGenerator<Row> {
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })
  let line = 0
  for await (const text of lines) {
    line++
    if (text.trim() === '') continue
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (e) {
      yield { line, error: `not valid JSON: ${(e as Error).message}` }
      continue
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      yield { line, error: 'not a JSON object' }
      continue
    }
    yield { line, value: value as Record<string, unknown> }
  }
}

function toWrite(
  c: PullCollection,
  keyField: string,
  value: Record<string, unknown>,
  writer: string,
): PullWrite {
  const key = value[keyField]
  if (key === undefined || key === null || key === '')
    throw riffleError('RIFFLE_BAD_REQUEST', `no key ("${keyField}")`)
  const set: Record<string, unknown> = {}
  for (const f in value) {
    if (f === keyField) continue
    set[f] = value[f]
  }
  const w: PullWrite = { key: typeof key === 'string' ? key : String(key), set, writer }
  checkWrite(c, w)
  return w
}

export async function loadFile(
  deps: { store: PullStore; catalog?: PullCatalog; collection: PullCollection },
  opts: LoadOptions,
): Promise<LoadSummary> {
  const started = Date.now()
  const c = deps.collection
  const format = opts.format ?? formatOf(opts.file)
  const keyField = opts.keyField ?? c.keyName
  const writer = `load:${opts.loadId ?? basename(opts.file)}`
  const batchSize = opts.batchSize ?? 5000
  const totalBytes = (await stat(opts.file)).size
  const stream = createReadStream(opts.file, { highWaterMark: 1 << 20 })
  const progress: LoadProgress = { bytesRead: 0, totalBytes, rows: 0, written: 0, bad: 0 }
  let batch: PullWrite[] = []
  let stoppedAt: number | undefined

  const flush = async () => {
    if (batch.length === 0) return
    const writes = batch
    batch = []
    await deps.store.write(c.name, writes)
    progress.written += writes.length
  }

  const rows = format === 'csv' ? csvRows(stream, c, keyField) : jsonlRows(stream)
  try {
    for await (const row of rows) {
      progress.rows++
      let w: PullWrite | undefined
      let error = row.error
      if (!error) {
        try {
          w = toWrite(c, keyField, row.value!, writer)
        } catch (e) {
          error = e instanceof Error ? e.message : String(e)
        }
      }
      if (error) {
        progress.bad++
        opts.onBadRow?.(row.line, error)
        if (opts.onError === 'stop') {
          stoppedAt = row.line
          break
        }
        continue
      }
      batch.push(w!)
      if (batch.length >= batchSize) {
        await flush()
        progress.bytesRead = stream.bytesRead
        opts.onProgress?.(progress)
      }
    }
    await flush()
  } finally {
    stream.destroy()
  }
  progress.bytesRead = stoppedAt === undefined ? totalBytes : stream.bytesRead
  opts.onProgress?.(progress)
  return {
    rows: progress.rows,
    written: progress.written,
    bad: progress.bad,
    stoppedAt,
    elapsedMs: Date.now() - started,
    writer,
  }
}
