/**
 * read_committed that holds when one producer has aborted more than one transaction.
 *
 * A Fetch response lists the aborted transactions in the fetched range as (producer id, first
 * offset). @platformatic/kafka (1.35 and 2.12 alike) keeps one range per producer id, so when a
 * producer aborted twice within one response, the records of every abort but the last reach the
 * reader. Riffle's engine keeps one transactional id across restarts, so its output topics hold
 * many aborts by one producer id (one per kill -9), and a stream fed by another Riffle, or any
 * transactional writer, would deliver aborted events as real ones.
 *
 * This applies the Java client's rule instead (CompletedFetch): walk the batches in offset order;
 * a producer is aborted from the first offset of each listed transaction up to its next ABORT
 * marker; a transactional batch of an aborted producer carries no records. The batches stay in
 * place, emptied, so the stream still moves its fetch position past them; the response then lists
 * no aborted transactions, and the library's own filter has nothing to do.
 */
import { type Consumer, kGetApi } from '@platformatic/kafka'

const IS_TRANSACTIONAL = 1 << 4
const IS_CONTROL = 1 << 5
const ABORT_MARKER = 0

export interface FetchedBatch {
  firstOffset: bigint
  lastOffsetDelta: number
  attributes: number
  producerId: bigint
  records: Array<{ key?: Buffer | null }>
}

export interface FetchedPartition {
  abortedTransactions?: Array<{ producerId: bigint; firstOffset: bigint }>
  records?: FetchedBatch[]
}

export interface FetchResponseLike {
  responses: Array<{ partitions: FetchedPartition[] }>
}

/** Empties the batches of aborted transactions, in place. Returns how many records it dropped. */
export function dropAbortedRecords(response: FetchResponseLike): number {
  let dropped = 0
  for (const topic of response.responses) {
    for (const partition of topic.partitions) {
      const listed = partition.abortedTransactions
      if (!listed?.length) continue
      if (partition.records) {
        const aborted = [...listed].sort((a, b) =>
          a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0,
        )
        const abortedProducers = new Set<bigint>()
        let next = 0
        for (const batch of partition.records) {
          const last = batch.firstOffset + BigInt(batch.lastOffsetDelta)
          while (next < aborted.length && aborted[next]!.firstOffset <= last) {
            abortedProducers.add(aborted[next]!.producerId)
            next++
          }
          if (batch.attributes & IS_CONTROL) {
            if (batch.records[0]?.key?.readInt16BE(2) === ABORT_MARKER)
              abortedProducers.delete(batch.producerId)
            continue
          }
          if (batch.attributes & IS_TRANSACTIONAL && abortedProducers.has(batch.producerId)) {
            dropped += batch.records.length
            batch.records = []
          }
        }
      }
      partition.abortedTransactions = []
    }
  }
  return dropped
}

type ApiCallback = (error: Error | null, api?: (...args: unknown[]) => void) => void
type WithGetApi = { [kGetApi]: (name: string, callback: ApiCallback) => void }

/** Makes this consumer's read_committed fetches drop every aborted transaction (see above). */
export function honourAbortedTransactions<C extends Consumer<never, never, never, never> | object>(
  consumer: C,
): C {
  const target = consumer as unknown as WithGetApi
  const getApi = target[kGetApi].bind(consumer)
  target[kGetApi] = (name, callback) => {
    if (name !== 'Fetch') {
      getApi(name, callback)
      return
    }
    getApi(name, (error, api) => {
      if (error || !api) {
        callback(error)
        return
      }
      callback(null, (...args: unknown[]) => {
        const done = args[args.length - 1] as (e: Error | null, r?: FetchResponseLike) => void
        args[args.length - 1] = (e: Error | null, r?: FetchResponseLike) => {
          if (!e && r) dropAbortedRecords(r)
          done(e, r)
        }
        api(...args)
      })
    })
  }
  return consumer
}
