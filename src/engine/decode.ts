/**
 * Decodes and validates Kafka messages against their stream definition: JSON, paths, types and
 * required fields. A bad message gets a reason code (for the dead-letter topic and the metrics)
 * and a detail that names the field; it never stops the partition.
 */
import type { FieldType, Stream } from '../definitions/schema.js'

export const DEAD_LETTER_REASONS = [
  'empty_value',
  'oversize',
  'invalid_utf8',
  'invalid_json',
  'not_an_object',
  'missing_required',
  'wrong_type',
] as const
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number]

export type Decoded =
  | { ok: true; event: Record<string, unknown>; eventTime: number | undefined; key: string | undefined }
  | { ok: false; reason: DeadLetterReason; detail: string }

export interface DecoderOptions {
  /** Messages larger than this are dead-lettered (default 1 MiB). */
  maxBytes?: number
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

interface FieldPlan {
  name: string
  path: string[]
  type: FieldType
  required: boolean
}

function coerce(type: FieldType, v: unknown): { ok: true; value: unknown } | { ok: false } {
  switch (type) {
    case 'string':
      return typeof v === 'string' ? { ok: true, value: v } : { ok: false }
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? { ok: true, value: v } : { ok: false }
    case 'integer':
      if (typeof v === 'number' && Number.isSafeInteger(v)) return { ok: true, value: BigInt(v) }
      if (typeof v === 'string' && /^-?\d{1,19}$/.test(v)) return { ok: true, value: BigInt(v) }
      return { ok: false }
    case 'boolean':
      return typeof v === 'boolean' ? { ok: true, value: v } : { ok: false }
    case 'timestamp': {
      if (typeof v === 'number' && Number.isFinite(v)) return { ok: true, value: new Date(v) }
      if (typeof v === 'string') {
        const t = Date.parse(v)
        if (!Number.isNaN(t)) return { ok: true, value: new Date(t) }
      }
      return { ok: false }
    }
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v) ? { ok: true, value: v } : { ok: false }
    case 'array':
      return Array.isArray(v) ? { ok: true, value: v } : { ok: false }
  }
}

function describeValue(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`
}

/** A decoder compiled once per stream definition. */
export class StreamDecoder {
  readonly #fields: FieldPlan[]
  readonly #maxBytes: number
  readonly #keyField: string
  readonly #timeField: string | undefined

  constructor(stream: Stream, opts: DecoderOptions = {}) {
    this.#maxBytes = opts.maxBytes ?? 1024 * 1024
    this.#keyField = stream.key
    this.#timeField = stream.time
    this.#fields = stream.fields.map((f) => ({
      name: f.name,
      path: (f.path ?? f.name).split('.'),
      type: f.type,
      required: f.required ?? false,
    }))
  }

  decode(value: Buffer | null | undefined): Decoded {
    if (!value || value.length === 0)
      return { ok: false, reason: 'empty_value', detail: 'the message has no value' }
    if (value.length > this.#maxBytes) {
      return {
        ok: false,
        reason: 'oversize',
        detail: `the value is ${value.length} bytes; the limit is ${this.#maxBytes}`,
      }
    }
    let text: string
    try {
      text = utf8.decode(value)
    } catch {
      return { ok: false, reason: 'invalid_utf8', detail: 'the value is not valid UTF-8' }
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (e) {
      return { ok: false, reason: 'invalid_json', detail: `the value is not JSON: ${(e as Error).message}` }
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      return {
        ok: false,
        reason: 'not_an_object',
        detail: `the value is ${describeValue(parsed)}, not a JSON object`,
      }
    }
    const event: Record<string, unknown> = {}
    for (const f of this.#fields) {
      let v: unknown = parsed
      for (const seg of f.path) {
        v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[seg] : undefined
        if (v === undefined) break
      }
      if (v === undefined || v === null) {
        if (f.required)
          return {
            ok: false,
            reason: 'missing_required',
            detail: `required field "${f.name}" (${f.path.join('.')}) is missing`,
          }
        event[f.name] = null
        continue
      }
      const c = coerce(f.type, v)
      if (!c.ok) {
        return {
          ok: false,
          reason: 'wrong_type',
          detail: `field "${f.name}" must be ${f.type}, got ${describeValue(v)}`,
        }
      }
      event[f.name] = c.value
    }
    const k = event[this.#keyField]
    const key = k === null || k === undefined ? undefined : String(k)
    const t = this.#timeField ? event[this.#timeField] : undefined
    return { ok: true, event, key, eventTime: t instanceof Date ? t.getTime() : undefined }
  }
}
