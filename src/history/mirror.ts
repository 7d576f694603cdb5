/**
 * Optional mirror of the output history to a Kafka topic (`RIFFLE_HISTORY_TOPIC`), so that Kafka
 * Connect sinks can load it. The engine calls `publish` with each batch after appending it.
 *
 * At least once: a replayed batch is published again (its records were already in the history, but
 * an earlier publish may not have happened). Sinks upsert on the `id` field, or read the
 * `riffle-activation-id` header, to load each activation once.
 */
import { Producer, stringSerializers } from '@platformatic/kafka'
import { riffleError } from '../errors.js'
import { SerialProducer } from '../kafka/serial-producer.js'
import type { Activation } from './activation.js'
import { toRecord } from './schema.js'

export interface HistoryMirrorOptions {
  brokers: string[]
  topic: string
  clientId?: string
  /** Per request, in milliseconds. */
  timeoutMs?: number
}

/**
 * The mirror's messages for a batch: key the customer key (per-customer order, as the source
 * streams), value the record as JSON (the API's shape), headers `riffle-activation-id` and
 * `riffle-campaign`. The engine may add these to the Kafka transaction that commits its offsets,
 * which makes the mirror exactly once; `HistoryMirror` publishes them on its own, at least once.
 */
export function mirrorMessages(
  topic: string,
  batch: readonly Activation[],
): Array<{ topic: string; key: string; value: string; headers: Record<string, string>; timestamp: bigint }> {
  return batch.map((a) => ({
    topic,
    key: a.customerKey,
    value: JSON.stringify(toRecord(a)),
    headers: { 'riffle-activation-id': a.id, 'riffle-campaign': a.campaign },
    timestamp: BigInt(a.outputTime),
  }))
}

export class HistoryMirror {
  readonly topic: string
  readonly #producer: SerialProducer<string, string, string, string>

  constructor(opts: HistoryMirrorOptions) {
    this.topic = opts.topic
    // idempotent: a retried produce is written once per partition; one send at a time (see SerialProducer)
    this.#producer = new SerialProducer(
      () =>
        new Producer({
          clientId: opts.clientId ?? 'riffle-history-mirror',
          bootstrapBrokers: opts.brokers,
          serializers: stringSerializers,
          idempotent: true,
          timeout: opts.timeoutMs ?? 10_000,
          retries: 5,
          retryDelay: 500,
          autocreateTopics: true,
        }),
      // five retries of up to timeoutMs each, with their delays
      { timeoutMs: 6 * (opts.timeoutMs ?? 10_000) + 5 * 500 },
    )
  }

  /** Publishes one message per activation (see `mirrorMessages`); resolves once the broker has them. */
  async publish(batch: readonly Activation[]): Promise<void> {
    if (batch.length === 0) return
    try {
      // SerialProducer sends it in parts that one produce request can carry
      await this.#producer.send(mirrorMessages(this.topic, batch))
    } catch (e) {
      throw riffleError(
        'RIFFLE_KAFKA_UNAVAILABLE',
        `could not mirror ${batch.length} activations to topic "${this.topic}": ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      )
    }
  }

  async close(): Promise<void> {
    await this.#producer.close().catch(() => {})
  }
}
