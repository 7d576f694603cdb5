/**
 * The one place where pull-record keys and values are checked against a collection's declared
 * field types, and coerced where that is safe. Every adapter, the Pull API and the loader use it,
 * so a value means the same thing whichever backend holds it.
 *
 * Canonical values: string, number (finite double), integer (a safe integer), boolean, timestamp
 * (an ISO 8601 string in UTC with milliseconds, e.g. `2025-01-31T12:00:00.000Z`), object (a plain
 * JSON object), array (a JSON array).
 */
import type { Collection, FieldType } from '../definitions/schema.js'
import { parseDurationMs } from '../definitions/validate.js'
import { riffleError } from '../errors.js'
import type { PullWrite } from './store.js'

/** Longest record key, in characters. Longer keys are rejected everywhere with RIFFLE_BAD_REQUEST. */
export const MAX_KEY_LENGTH = 256

/** A collection as the stores use it: its declared field types and TTL, looked up once. */
export interface PullCollection {
  name: string
  /** Name of the record key in the definitions (e.g. customer_id); informational. */
  keyName: string
  /** Declared field types by name. */
  fields: ReadonlyMap<string, FieldType>
  /** Records not written for this long have expired; undefined: never. */
  ttlMs: number | undefined
  definition: Collection
}

export function compileCollection(c: Collection): PullCollection {
  return {
    name: c.name,
    keyName: c.key,
    fields: new Map(c.fields.map((f) => [f.name, f.type])),
    ttlMs: c.ttl === undefined ? undefined : parseDurationMs(c.ttl),
    definition: c,
  }
}

/** Why a key is unusable, or undefined when it is fine. */
export function keyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string') return 'the key must be a string'
  if (key.length === 0) return 'the key is empty'
  if (key.length > MAX_KEY_LENGTH) return `the key is longer than ${MAX_KEY_LENGTH} characters`
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we reject
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'the key contains a control character'
  return undefined
}

export function checkKey(key: unknown): string {
  const problem = keyProblem(key)
  if (problem) throw riffleError('RIFFLE_BAD_REQUEST', problem)
  return key as string
}

function knownFields(c: PullCollection): string {
  return [...c.fields.keys()].join(', ')
}

/** The stores keep metadata (`_id`, `_updatedAt`, `_writer`, `_eventTime`) beside the fields. */
function reservedField(field: string): Error {
  return riffleError(
    'RIFFLE_BAD_REQUEST',
    `field "${field}": names starting with "_" are reserved for metadata`,
  )
}

export function unknownField(c: PullCollection, field: string): Error {
  return riffleError(
    'RIFFLE_BAD_REQUEST',
    `unknown field "${field}" in collection "${c.name}" (fields: ${knownFields(c)})`,
  )
}

/** Checks a list of requested field names (e.g. `fields=a,b`); an unknown one is an error naming it. */
export function checkFieldNames(c: PullCollection, fields: readonly string[]): void {
  for (const f of fields) if (!c.fields.has(f)) throw unknownField(c, f)
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/** Why a value cannot be a value of this type; used for the error message. */
class ValueProblem {
  constructor(readonly message: string) {}
}

function toTimestamp(v: unknown): string | ValueProblem {
  let ms: number
  if (v instanceof Date) ms = v.getTime()
  else if (typeof v === 'number') ms = v
  else if (typeof v === 'bigint') ms = Number(v)
  else if (typeof v === 'string') {
    const s = v.trim()
    if (/^-?\d+$/.test(s)) ms = Number(s)
    else if (ISO_DATE.test(s)) {
      // A date-time without a zone is read as UTC, not the server's local time.
      const zoned = /[T ]\d{2}:\d{2}/.test(s) && !/(Z|[+-]\d{2}:?\d{2})$/i.test(s) ? `${s}Z` : s
      ms = Date.parse(zoned.replace(' ', 'T'))
    } else return new ValueProblem('expected an ISO 8601 timestamp or epoch milliseconds')
  } else return new ValueProblem('expected an ISO 8601 timestamp or epoch milliseconds')
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return new ValueProblem('not a valid timestamp')
  return new Date(ms).toISOString()
}

/** The canonical value of `v` for a field of type `type`, or a problem. Null is not handled here. */
function coerce(type: FieldType, v: unknown): unknown | ValueProblem {
  switch (type) {
    case 'string':
      if (typeof v === 'string') return v
      if (typeof v === 'number' && Number.isFinite(v)) return String(v)
      if (typeof v === 'bigint' || typeof v === 'boolean') return String(v)
      return new ValueProblem('expected a string')
    case 'number': {
      if (typeof v === 'number') return Number.isFinite(v) ? v : new ValueProblem('expected a finite number')
      if (typeof v === 'bigint') return Number(v)
      if (typeof v === 'string' && v.trim() !== '') {
        const n = Number(v)
        if (Number.isFinite(n)) return n
      }
      return new ValueProblem('expected a number')
    }
    case 'integer': {
      let n: number | undefined
      if (typeof v === 'number') n = v
      else if (typeof v === 'bigint') n = Number(v)
      else if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) n = Number(v)
      if (n === undefined || !Number.isInteger(n)) return new ValueProblem('expected an integer')
      if (!Number.isSafeInteger(n)) return new ValueProblem('integer out of the exact range (±2^53)')
      return n
    }
    case 'boolean':
      if (typeof v === 'boolean') return v
      if (typeof v === 'string') {
        const s = v.trim().toLowerCase()
        if (s === 'true' || s === '1') return true
        if (s === 'false' || s === '0') return false
      }
      if (v === 1 || v === 0) return v === 1
      return new ValueProblem('expected a boolean')
    case 'timestamp':
      return toTimestamp(v)
    case 'object':
      if (typeof v === 'string' && v.trimStart().startsWith('{')) {
        try {
          v = JSON.parse(v)
        } catch {
          return new ValueProblem('expected an object (the text is not valid JSON)')
        }
      }
      if (isPlainObject(v)) return jsonSafe(v)
      return new ValueProblem('expected an object')
    case 'array':
      if (typeof v === 'string' && v.trimStart().startsWith('[')) {
        try {
          v = JSON.parse(v)
        } catch {
          return new ValueProblem('expected an array (the text is not valid JSON)')
        }
      }
      if (Array.isArray(v)) return jsonSafe(v)
      return new ValueProblem('expected an array')
  }
}

/** Objects and arrays are stored as JSON: anything JSON cannot hold is rejected, not silently lost. */
function jsonSafe(v: unknown): unknown | ValueProblem {
  try {
    const text = JSON.stringify(v)
    return text === undefined ? new ValueProblem('not representable as JSON') : JSON.parse(text)
  } catch {
    return new ValueProblem('not representable as JSON')
  }
}

/** The kind of a rejected value, never the value itself: error messages end up in logs. */
function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'object') return 'an object'
  if (typeof v === 'string') return v === '' ? 'an empty string' : 'a string'
  return `a ${typeof v}`
}

/** The canonical value of one field; throws RIFFLE_BAD_REQUEST naming the field. */
export function coerceField(c: PullCollection, field: string, value: unknown): unknown {
  const type = c.fields.get(field)
  if (type === undefined) throw unknownField(c, field)
  if (field.charCodeAt(0) === 95) throw reservedField(field)
  const out = coerce(type, value)
  if (out instanceof ValueProblem) {
    throw riffleError(
      'RIFFLE_BAD_REQUEST',
      `invalid value for field "${field}" (${type}) of collection "${c.name}": ${out.message}, got ${describe(value)}`,
    )
  }
  return out
}

/** A write whose key and values have been checked and made canonical. */
export interface CheckedWrite {
  key: string
  /** Fields set, canonical values. Never empty-valued: a null in the input became an unset. */
  set: Record<string, unknown>
  setNames: string[]
  unset: string[]
  delete: boolean
  eventTime: number | undefined
  onlyIfNewer: boolean
  writer: string
}

/**
 * Checks and canonicalises one write. A `null` in `set` means unset (as in JSON Merge Patch);
 * setting and unsetting the same field in one write is an error.
 */
export function checkWrite(c: PullCollection, w: PullWrite): CheckedWrite {
  const key = checkKey(w.key)
  if (typeof w.writer !== 'string' || w.writer === '')
    throw riffleError('RIFFLE_BAD_REQUEST', 'a write needs a writer')
  let eventTime: number | undefined
  if (w.eventTime !== undefined && w.eventTime !== null) {
    eventTime = Number(w.eventTime)
    if (!Number.isFinite(eventTime)) throw riffleError('RIFFLE_BAD_REQUEST', 'eventTime must be epoch ms')
  }
  const onlyIfNewer = w.onlyIfNewer === true
  if (onlyIfNewer && eventTime === undefined)
    throw riffleError('RIFFLE_BAD_REQUEST', 'an onlyIfNewer write needs an eventTime')
  if (w.delete) {
    return { key, set: {}, setNames: [], unset: [], delete: true, eventTime, onlyIfNewer, writer: w.writer }
  }
  const set: Record<string, unknown> = {}
  const setNames: string[] = []
  const unset: string[] = []
  if (w.set) {
    if (!isPlainObject(w.set)) throw riffleError('RIFFLE_BAD_REQUEST', '`set` must be an object of fields')
    for (const field in w.set) {
      const v = w.set[field]
      if (v === undefined) continue
      if (v === null) {
        if (!c.fields.has(field)) throw unknownField(c, field)
        if (field.charCodeAt(0) === 95) throw reservedField(field)
        unset.push(field)
        continue
      }
      set[field] = coerceField(c, field, v)
      setNames.push(field)
    }
  }
  if (w.unset) {
    for (const field of w.unset) {
      if (!c.fields.has(field)) throw unknownField(c, field)
      if (field.charCodeAt(0) === 95) throw reservedField(field)
      if (field in set)
        throw riffleError('RIFFLE_BAD_REQUEST', `field "${field}" is both set and unset in one write`)
      if (!unset.includes(field)) unset.push(field)
    }
  }
  return { key, set, setNames, unset, delete: false, eventTime, onlyIfNewer, writer: w.writer }
}

/** Checks a whole batch before any of it is written, so a bad write leaves nothing half-written. */
export function checkWrites(c: PullCollection, writes: readonly PullWrite[]): CheckedWrite[] {
  const out = new Array<CheckedWrite>(writes.length)
  for (let i = 0; i < writes.length; i++) {
    try {
      out[i] = checkWrite(c, writes[i]!)
    } catch (e) {
      if (writes.length > 1 && e instanceof Error)
        e.message = `write ${i + 1} of ${writes.length}: ${e.message}`
      throw e
    }
  }
  return out
}

/** Keeps only the requested fields of a record's fields (undefined: all). */
export function pickFields(
  fields: Record<string, unknown>,
  wanted: readonly string[] | undefined,
): Record<string, unknown> {
  if (!wanted) return fields
  const out: Record<string, unknown> = {}
  for (const f of wanted) if (f in fields) out[f] = fields[f]
  return out
}

export function unknownCollection(name: string): Error {
  return riffleError('RIFFLE_UNKNOWN_COLLECTION', `collection "${name}" does not exist`)
}

/** The time before which a record's last write makes it expired, or -Infinity without a TTL. */
export function expiredBefore(c: PullCollection, now = Date.now()): number {
  return c.ttlMs === undefined ? Number.NEGATIVE_INFINITY : now - c.ttlMs
}
