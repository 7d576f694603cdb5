import { Admin } from '@platformatic/kafka'

/** A long-lived admin client for cheap broker checks (readiness, topic metadata). */
export class KafkaAdmin {
  readonly #admin: Admin

  constructor(readonly brokers: string[]) {
    this.#admin = new Admin({
      clientId: 'riffle-admin',
      bootstrapBrokers: brokers,
      timeout: 2_000,
      retries: 0,
    })
  }

  /** Resolves once the cluster answers a metadata request. */
  async ping(): Promise<void> {
    await this.#admin.metadata({ topics: [], forceUpdate: true })
  }

  async close(): Promise<void> {
    await this.#admin.close().catch(() => {})
  }
}
