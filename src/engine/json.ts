/** JSON for outputs: CEL integers are BigInt and timestamps are Date; both serialise plainly. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  return value
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, jsonReplacer)
}

/**
 * Plain JSON values (BigInt → number or string, Date → ISO string, Map → object). A value that is
 * plain already is returned as it is, not copied.
 */
export function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  if (value === null || typeof value !== 'object' || isPlain(value, 0)) return value
  return toPlain(value)
}

/** True when `value` (an object) holds only JSON values: nothing for `plain` to convert. */
function isPlain(value: object, depth: number): boolean {
  if (depth > 32) return false
  if (Array.isArray(value)) {
    for (const v of value) if (!isPlainValue(v, depth + 1)) return false
    return true
  }
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return false
  for (const k in value) {
    if (!Object.hasOwn(value, k)) return false
    if (!isPlainValue((value as Record<string, unknown>)[k], depth + 1)) return false
  }
  return true
}

function isPlainValue(v: unknown, depth: number): boolean {
  const t = typeof v
  if (t === 'string' || t === 'number' || t === 'boolean' || v === null || v === undefined) return true
  return t === 'object' && isPlain(v as object, depth)
}

function toPlain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  if (value instanceof Date) return value.toISOString()
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), toPlain(v)]))
  if (Array.isArray(value)) return value.map(toPlain)
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = toPlain(v)
    return out
  }
  return value
}
