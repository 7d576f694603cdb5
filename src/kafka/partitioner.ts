/**
 * Which partition a keyed record goes to: Kafka's own rule, as the Java client (and librdkafka's
 * `murmur2_random`, Kafka Streams, Kafka Connect) apply it: murmur2 of the key bytes, made
 * positive by masking the sign bit, modulo the partition count.
 *
 * @platformatic/kafka's default partitioner makes murmur2 positive with `>>> 0` instead, which
 * sends about half of all keys to another partition than a Java producer would: a customer's
 * events from Riffle's HTTP ingest and from a Java service would then sit in two partitions (no
 * order between them), and Riffle's keyed outputs would not be co-partitioned with topics Kafka
 * Streams joins them to. Every Riffle producer uses this one: the engine's transactional producer
 * as its partitioner, SerialProducer to place each message before it sends.
 */
export { compatibilityPartitioner as javaCompatiblePartitioner } from '@platformatic/kafka'
