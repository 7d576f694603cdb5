/** Parsing what people type into the history's filters: times, time ranges, statuses, cursors. */
import { riffleError } from '../errors.js'
import type { ActivationStatus } from './activation.js'
import { ACTIVATION_STATUSES } from './schema.js'

/** Filters on the output history. Times are epoch milliseconds on the output time. */
export interface HistoryFilter {
  campaign?: string
  customerKey?: string
  /** Inclusive. */
  since?: number
  /** Exclusive. */
  until?: number
  statuses?: ActivationStatus[]
}

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i
const RELATIVE = /^(\d+)(ms|s|m|h|d|w)$/

/**
 * A point in time: an ISO 8601 date (`2026-01-31`, midnight UTC), a date-time with a zone
 * (`2026-01-31T08:00:00Z`, `…+01:00`), or a duration before `now` (`15m`, `24h`, `7d`).
 */
export function parseTime(setting: string, raw: string, now = Date.now()): number {
  const text = raw.trim()
  const rel = RELATIVE.exec(text)
  if (rel) return now - Number(rel[1]) * UNIT_MS[rel[2]!]!
  if (DATE_ONLY.test(text) || DATE_TIME.test(text)) {
    const ms = Date.parse(DATE_ONLY.test(text) ? `${text}T00:00:00Z` : text)
    if (Number.isFinite(ms)) return ms
  }
  throw riffleError(
    'RIFFLE_BAD_TIME_RANGE',
    `${setting}: "${raw}" is not a time; use an ISO 8601 date or date-time with a zone (2026-01-31, 2026-01-31T08:00:00Z) or a duration ago (24h, 7d)`,
  )
}

/** Parses `since` and `until`; the range must not be empty. */
export function parseTimeRange(
  since: string | undefined,
  until: string | undefined,
  now = Date.now(),
): { since?: number; until?: number } {
  const s = since === undefined || since === '' ? undefined : parseTime('since', since, now)
  const u = until === undefined || until === '' ? undefined : parseTime('until', until, now)
  if (s !== undefined && u !== undefined && s >= u) {
    throw riffleError(
      'RIFFLE_BAD_TIME_RANGE',
      `the time range is empty: since (${new Date(s).toISOString()}) must be before until (${new Date(u).toISOString()})`,
    )
  }
  return { ...(s !== undefined ? { since: s } : {}), ...(u !== undefined ? { until: u } : {}) }
}

/** A comma-separated list of statuses. */
export function parseStatuses(raw: string | undefined): ActivationStatus[] | undefined {
  if (raw === undefined || raw === '') return undefined
  const list = raw.split(',').map((s) => s.trim())
  for (const s of list) {
    if (!(ACTIVATION_STATUSES as readonly string[]).includes(s))
      throw riffleError(
        'RIFFLE_BAD_REQUEST',
        `status: "${s}" is not a status; use ${ACTIVATION_STATUSES.join(', ')}`,
      )
  }
  return list as ActivationStatus[]
}

/** The position after the last record of a page (newest first): its output time and seq. */
export interface Cursor {
  outputTime: number
  seq: number
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.outputTime}.${c.seq}`).toString('base64url')
}

export function decodeCursor(raw: string): Cursor {
  const m = /^(-?\d{1,16})\.(\d{1,19})$/.exec(Buffer.from(raw, 'base64url').toString())
  if (!m) throw riffleError('RIFFLE_BAD_CURSOR', 'cursor: not a cursor this API returned')
  return { outputTime: Number(m[1]), seq: Number(m[2]) }
}
