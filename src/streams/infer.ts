/**
 * Proposes a typed field list for a stream from sampled JSON messages, with nested paths. The
 * administrator reviews the proposal; nothing is applied by inference alone.
 */
import type { FieldType, StreamField } from '../definitions/schema.js'

export interface InferredStream {
  fields: StreamField[]
  /** A likely customer key field, if one stands out. */
  key: string | undefined
  /** A likely event-time field, if one stands out. */
  time: string | undefined
  sampled: number
  /** Messages that were not JSON objects, and so were left out. */
  skipped: number
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/
const MAX_DEPTH = 5

interface Seen {
  path: string[]
  types: Set<FieldType>
  count: number
}

function leafType(v: unknown): FieldType | undefined {
  switch (typeof v) {
    case 'string':
      return ISO_TIME.test(v) && !Number.isNaN(Date.parse(v)) ? 'timestamp' : 'string'
    case 'number':
      return Number.isInteger(v) ? 'integer' : 'number'
    case 'boolean':
      return 'boolean'
    case 'object':
      if (v === null) return undefined
      return Array.isArray(v) ? 'array' : 'object'
    default:
      return undefined
  }
}

function walk(v: Record<string, unknown>, prefix: string[], seen: Map<string, Seen>, depth: number): void {
  for (const [k, value] of Object.entries(v)) {
    const path = [...prefix, k]
    const t = leafType(value)
    if (t === undefined) continue
    if (t === 'object' && depth < MAX_DEPTH && Object.keys(value as object).length > 0) {
      walk(value as Record<string, unknown>, path, seen, depth + 1)
      continue
    }
    const id = path.join('\u0000')
    const s = seen.get(id) ?? { path, types: new Set<FieldType>(), count: 0 }
    s.types.add(t)
    s.count++
    seen.set(id, s)
  }
}

function merge(types: Set<FieldType>): FieldType {
  if (types.size === 1) return [...types][0]!
  if ([...types].every((t) => t === 'integer' || t === 'number')) return 'number'
  if ([...types].every((t) => t === 'string' || t === 'timestamp')) return 'string'
  return 'object'
}

function identifier(s: string): string {
  const id = s.replace(/[^A-Za-z0-9_]/g, '_').replace(/^([0-9])/, '_$1')
  return id === '' ? '_' : id.slice(0, 100)
}

/** Infers fields from parsed messages; `values` may hold anything, non-objects are skipped. */
export function inferFields(values: unknown[]): InferredStream {
  const seen = new Map<string, Seen>()
  let sampled = 0
  let skipped = 0
  for (const v of values) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      skipped++
      continue
    }
    sampled++
    walk(v as Record<string, unknown>, [], seen, 0)
  }
  const used = new Set<string>()
  const fields: StreamField[] = []
  for (const s of seen.values()) {
    let name = identifier(s.path[s.path.length - 1]!)
    if (used.has(name)) name = identifier(s.path.join('_'))
    while (used.has(name)) name = `${name}_`
    used.add(name)
    const field: StreamField = { name, type: merge(s.types) }
    if (s.count === sampled && sampled > 0) field.required = true
    const path = s.path.join('.')
    if (path !== name) field.path = path
    fields.push(field)
  }
  const byName = (re: RegExp, type?: FieldType[]) =>
    fields.find((f) => re.test(f.name) && (!type || type.includes(f.type)) && f.required)?.name ??
    fields.find((f) => re.test(f.name) && (!type || type.includes(f.type)))?.name
  const key =
    byName(/^(customer_id|customerid|customer|user_id|userid|member_id|account_id|client_id|contact_id)$/i, [
      'string',
      'integer',
    ]) ?? byName(/_id$/i, ['string', 'integer'])
  const time = byName(/^(ts|time|timestamp|event_time|eventtime|occurred_at|created_at|.*_at|.*_time)$/i, [
    'timestamp',
  ])
  return { fields, key, time, sampled, skipped }
}
