/**
 * HTTP ingest for channels that speak HTTP rather than Kafka: validate a JSON event against its
 * stream, then produce it to the stream's topic, keyed by the customer key.
 */
import { Producer, type TopicWithPartitionAndOffset } from '@platformatic/kafka'
import type { Stream } from '../definitions/schema.js'
import type { DefinitionsService } from '../definitions/service.js'
import { StreamDecoder } from '../engine/decode.js'
import { riffleError } from '../errors.js'
import { SerialProducer } from '../kafka/serial-producer.js'

export interface Ingested {
  stream: string
  topic: string
  partition: number
  offset: string
  key: string
}

export class IngestService {
  /** Sends one at a time: see SerialProducer (concurrent sends lost events). */
  #producer: SerialProducer | undefined
  readonly #decoders = new Map<string, { revision: number; decoder: StreamDecoder; stream: Stream }>()

  constructor(
    private readonly defs: DefinitionsService,
    private readonly brokers: () => Promise<string[]>,
  ) {}

  async #decoder(name: string): Promise<{ decoder: StreamDecoder; stream: Stream }> {
    const snapshot = await this.defs.snapshot()
    const cached = this.#decoders.get(name)
    if (cached && cached.revision === snapshot.revision) return cached
    const stream = snapshot.definitions.streams.find((s) => s.name === name)
    if (!stream) throw riffleError('RIFFLE_NOT_FOUND', `stream "${name}" does not exist`)
    const entry = { revision: snapshot.revision, decoder: new StreamDecoder(stream), stream }
    this.#decoders.set(name, entry)
    return entry
  }

  async ingest(name: string, raw: Buffer): Promise<Ingested> {
    const { decoder, stream } = await this.#decoder(name)
    const d = decoder.decode(raw)
    if (!d.ok) {
      throw riffleError('RIFFLE_BAD_REQUEST', `the event does not match stream "${name}": ${d.detail}`, {
        issues: [{ path: d.reason, message: d.detail }],
      })
    }
    const key = d.key ?? ''
    this.#producer ??= new SerialProducer(
      async () =>
        new Producer({
          clientId: 'riffle-ingest',
          bootstrapBrokers: await this.brokers(),
          idempotent: true,
          acks: -1,
          autocreateTopics: true,
        }),
    )
    let o: TopicWithPartitionAndOffset | undefined
    try {
      ;[o] = await this.#producer.send([{ topic: stream.topic, key: Buffer.from(key), value: raw }])
    } catch (e) {
      throw riffleError(
        'RIFFLE_KAFKA_UNAVAILABLE',
        `could not produce to topic "${stream.topic}": ${(e as Error).message}`,
        { cause: e },
      )
    }
    return {
      stream: name,
      topic: stream.topic,
      partition: o?.partition ?? 0,
      offset: String(o?.offset ?? ''),
      key,
    }
  }

  async close(): Promise<void> {
    await this.#producer?.close().catch(() => {})
  }
}
