/**
 * The size of one produce request. The broker refuses a record batch past its `message.max.bytes`
 * (1 MiB by default) whole, so a large send goes in consecutive parts.
 */
import type { MessageToProduce } from '@platformatic/kafka'

/** One request's most bytes of keys and values: well under the broker's default 1 MiB per batch. */
export const MAX_REQUEST_BYTES = 512 * 1024

/** Consecutive parts of at most MAX_REQUEST_BYTES (a single larger message stands alone). */
export function partsOf<T extends MessageToProduce<unknown, unknown, unknown, unknown>>(
  messages: T[],
): Array<{ messages: T[]; bytes: number }> {
  const parts: Array<{ messages: T[]; bytes: number }> = []
  let current: { messages: T[]; bytes: number } = { messages: [], bytes: 0 }
  for (const m of messages) {
    const n = byteLength(m.key) + byteLength(m.value) + 64
    if (current.messages.length > 0 && current.bytes + n > MAX_REQUEST_BYTES) {
      parts.push(current)
      current = { messages: [], bytes: 0 }
    }
    current.messages.push(m)
    current.bytes += n
  }
  parts.push(current)
  return parts
}

function byteLength(x: unknown): number {
  if (Buffer.isBuffer(x)) return x.length
  if (typeof x === 'string') return Buffer.byteLength(x)
  return 0
}
