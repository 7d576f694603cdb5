/**
 * The consumed offsets of a batch, added to the producer's open transaction in one TxnOffsetCommit
 * request. @platformatic/kafka's Transaction#addOffset sends one request per partition (and its
 * calls must not overlap: they are deduplicated under one key), so a batch over P partitions paid
 * P sequential round trips to the group coordinator before EndTxn, each one also waiting for the
 * event loop while the next batch is activated.
 *
 * The request is the library's own (`kGetApi('TxnOffsetCommit')`), sent to the group coordinator
 * named in the messages' consumer metadata, with the library's retry policy, as addOffset does.
 */
import {
  type Broker,
  type Callback,
  type Connection,
  kGetApi,
  kGetConnection,
  kMetadata,
  kPerformWithRetry,
  type Message,
  type Producer,
} from '@platformatic/kafka'

interface ConsumerInfo {
  groupId: string
  generationId: number
  memberId: string
  coordinatorId: number
}

interface PartitionOffset {
  partitionIndex: number
  committedOffset: bigint
  committedLeaderEpoch: number
}

type TxnOffsetCommitApi = (
  connection: Connection,
  transactionalId: string,
  groupId: string,
  producerId: bigint,
  producerEpoch: number,
  generationId: number,
  memberId: string,
  groupInstanceId: string | null,
  topics: Array<{ name: string; partitions: PartitionOffset[] }>,
  callback: Callback<unknown>,
) => void

/**
 * Commits, inside the producer's open transaction `transactionalId`, the offset after each of
 * `messages` (the last consumed message of each partition; one consumer group). The transaction
 * must already have the group (Transaction#addConsumer).
 */
export function addOffsetsToTransaction(
  producer: Producer<Buffer, Buffer, Buffer, Buffer>,
  transactionalId: string,
  messages: ReadonlyArray<Message<Buffer, Buffer, Buffer, Buffer>>,
): Promise<void> {
  if (messages.length === 0) return Promise.resolve()
  const consumer = (messages[0]!.metadata as { consumer?: ConsumerInfo }).consumer
  if (!consumer) return Promise.reject(new Error('the messages carry no consumer metadata'))
  const topics = [...new Set(messages.map((m) => m.topic))]
  return new Promise<void>((resolve, reject) => {
    producer[kPerformWithRetry](
      'txnOffsetCommit',
      (retry: Callback<unknown>) => {
        producer[kMetadata]({ topics }, (error, metadata) => {
          if (error) return retry(error, undefined)
          const broker = metadata!.brokers.get(consumer.coordinatorId) as Broker | undefined
          if (!broker)
            return retry(
              new Error(`group coordinator ${consumer.coordinatorId} is not in the metadata`),
              undefined,
            )
          producer[kGetConnection](broker, (error, connection) => {
            if (error) return retry(error, undefined)
            producer[kGetApi]('TxnOffsetCommit', (error, api) => {
              if (error) return retry(error, undefined)
              const byTopic = new Map<string, PartitionOffset[]>()
              for (const m of messages) {
                const partitions = byTopic.get(m.topic) ?? []
                partitions.push({
                  partitionIndex: m.partition,
                  committedOffset: m.offset + 1n,
                  committedLeaderEpoch:
                    metadata!.topics.get(m.topic)?.partitions[m.partition]?.leaderEpoch ?? -1,
                })
                byTopic.set(m.topic, partitions)
              }
              ;(api as unknown as TxnOffsetCommitApi)(
                connection!,
                transactionalId,
                consumer.groupId,
                producer.producerId!,
                producer.producerEpoch!,
                consumer.generationId,
                consumer.memberId,
                null,
                [...byTopic].map(([name, partitions]) => ({ name, partitions })),
                (error) => retry(error ?? null, undefined),
              )
            })
          })
        })
      },
      (error) => (error ? reject(error) : resolve()),
    )
  })
}
