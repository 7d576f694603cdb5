/**
 * A Kafka call that has not settled after `ms` is given up. @platformatic/kafka can leave a call
 * unanswered: an idempotent producer's first send to a broker that refuses connections never
 * settles (a plain producer fails in milliseconds). An engine waiting for ever on one would hold
 * back every partition without a word in its log, an ingest request would never answer; instead
 * the step fails with its name, and the caller drops the client and retries (the engine's retry
 * first checks whether the transaction it gave up on committed).
 */
export class KafkaStepTimeout extends Error {
  constructor(
    readonly step: string,
    readonly ms: number,
  ) {
    super(`Kafka ${step} did not finish within ${ms} ms`)
    this.name = 'KafkaStepTimeout'
  }
}

export function within<T>(p: Promise<T>, ms: number, step: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KafkaStepTimeout(step, ms)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}
