/**
 * The activation record: one campaign acting on one event (real-time) or one row (scheduled).
 * Every output carries its id; the output history keeps every record, holdout included.
 */

/** Where an activation came from: a Kafka message, or a scheduled run's row. */
export type ActivationSource =
  | { kind: 'stream'; topic: string; partition: number; offset: string }
  | { kind: 'run'; runId: string }

/**
 * What happened: `sent` (outputs delivered), `holdout` (control group: recorded, no outputs),
 * `suppressed` (a control stopped it: dedupe or frequency), `expired` (older than maxEventAge),
 * `failed` (an output could not be delivered after retries), `error` (the campaign itself failed).
 */
export type ActivationStatus = 'sent' | 'holdout' | 'suppressed' | 'expired' | 'failed' | 'error'

export interface DeliveryStatus {
  status: 'ok' | 'failed' | 'skipped'
  detail?: string
}

export interface Activation {
  /** campaign + version + source: `<campaign>@<version>/<topic>/<partition>/<offset>` or `<campaign>@<version>/run/<runId>/<key>`. */
  id: string
  campaign: string
  campaignVersion: number
  cell: string
  customerKey: string
  source: ActivationSource
  status: ActivationStatus
  /** Epoch milliseconds. */
  eventTime: number | null
  /** Epoch milliseconds. */
  outputTime: number
  content: Record<string, unknown>
  /** Per output channel, e.g. `kafka:campaign.offers`, `pull:profile`, `webhook:0`. */
  deliveries: Record<string, DeliveryStatus>
  /** Why it was suppressed, expired or failed. */
  reason?: string
}

export function activationId(
  campaign: string,
  version: number,
  source: ActivationSource,
  key: string,
): string {
  return source.kind === 'stream'
    ? `${campaign}@${version}/${source.topic}/${source.partition}/${source.offset}`
    : `${campaign}@${version}/run/${source.runId}/${key}`
}
