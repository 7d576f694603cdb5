/**
 * Tools that explain decisions without writing anything: a dry run of one campaign on a sample
 * event, and a trace of one Kafka message through every campaign on its stream.
 */

import type { Stream } from '../definitions/schema.js'
import type { DefinitionsService } from '../definitions/service.js'
import { riffleError } from '../errors.js'
import type { Activation } from '../history/activation.js'
import { fetchMessage } from '../kafka/sample.js'
import type { PullStore } from '../pull/store.js'
import { activateBatch, type Explanation, type HistoryPort, type TriggerItem } from './activate.js'
import { StreamDecoder } from './decode.js'
import type { DedupeStore } from './dedupe.js'
import { plain } from './json.js'
import { campaignRuntime } from './plan.js'
import type { WebhookSender } from './webhook.js'

export interface DecisionDeps {
  defs: DefinitionsService
  pull: PullStore
  history: HistoryPort
  dedupe: DedupeStore
  webhooks: WebhookSender
  brokers: () => Promise<string[]>
}

export interface DryRunInput {
  /** A sample event, as the stream's messages carry it (JSON). */
  event?: unknown
  /** A data store row, for scheduled campaigns. */
  row?: Record<string, unknown>
}

export type DryRunResult =
  | {
      campaign: string
      version: number
      status: string
      decoded: unknown
      deadLetter: undefined
      decision: Explanation
    }
  | {
      campaign: string
      version: number
      status: string
      decoded: undefined
      deadLetter: { reason: string; detail: string }
      decision: undefined
    }

export class DecisionService {
  constructor(private readonly deps: DecisionDeps) {}

  async dryRun(name: string, input: DryRunInput): Promise<DryRunResult> {
    const snapshot = await this.deps.defs.snapshot()
    const compiled = snapshot.compiled.get(name)
    const def = snapshot.definitions.campaigns.find((c) => c.name === name)
    if (!def || !compiled) throw riffleError('RIFFLE_NOT_FOUND', `campaign "${name}" does not exist`)
    const version = snapshot.versions.get(`campaign:${name}`) ?? 1
    const runtime = campaignRuntime(compiled, version)
    const base = { campaign: name, version, status: def.status ?? 'draft' }
    let trigger: TriggerItem
    if ('stream' in def.trigger) {
      if (input.event === undefined)
        throw riffleError('RIFFLE_BAD_REQUEST', 'give `event`: a sample event of the stream')
      const stream = snapshot.definitions.streams.find(
        (s) => s.name === (def.trigger as { stream: string }).stream,
      )!
      const d = new StreamDecoder(stream).decode(Buffer.from(JSON.stringify(input.event)))
      if (!d.ok)
        return {
          ...base,
          decoded: undefined,
          deadLetter: { reason: d.reason, detail: d.detail },
          decision: undefined,
        }
      const now = Date.now()
      trigger = {
        source: { kind: 'stream', topic: stream.topic, partition: -1, offset: 'dry-run' },
        customerKey: d.key ?? '',
        eventTime: d.eventTime ?? now,
        scope: {
          event: d.event,
          meta: {
            topic: stream.topic,
            partition: -1n,
            offset: 'dry-run',
            timestamp: new Date(now),
            key: d.key ?? '',
          },
        },
      }
      const explained = await this.#explain(runtime, trigger)
      return { ...base, decoded: plain(d.event), deadLetter: undefined, decision: explained }
    }
    if (!input.row) throw riffleError('RIFFLE_BAD_REQUEST', 'give `row`: a sample row of the audience')
    const keyColumn = def.audience?.key ?? snapshot.definitions.datastore?.key ?? 'customer_id'
    trigger = {
      source: { kind: 'run', runId: 'dry-run' },
      customerKey: String(input.row[keyColumn] ?? ''),
      eventTime: null,
      scope: { row: input.row },
    }
    return {
      ...base,
      decoded: input.row,
      deadLetter: undefined,
      decision: await this.#explain(runtime, trigger),
    }
  }

  async #explain(runtime: ReturnType<typeof campaignRuntime>, trigger: TriggerItem): Promise<Explanation> {
    const { pull, history, dedupe, webhooks } = this.deps
    const outcome = await activateBatch(
      [{ campaign: runtime, triggers: [trigger] }],
      { pull, history, dedupe, webhooks },
      { dryRun: true },
    )
    return outcome.explain[0]!
  }

  /** Re-reads one message and explains, per campaign on its stream, why it did or did not fire. */
  async trace(topic: string, partition: number, offset: bigint) {
    const snapshot = await this.deps.defs.snapshot()
    const stream: Stream | undefined = snapshot.definitions.streams.find((s) => s.topic === topic)
    if (!stream) throw riffleError('RIFFLE_NOT_FOUND', `no stream is defined on topic "${topic}"`)
    const m = await fetchMessage({ brokers: await this.deps.brokers(), topic, partition, offset })
    if (!m)
      throw riffleError(
        'RIFFLE_NOT_FOUND',
        `topic "${topic}" has no message at partition ${partition}, offset ${offset}`,
      )
    const message = {
      topic,
      partition,
      offset: offset.toString(),
      timestamp: new Date(Number(m.timestamp)).toISOString(),
      key: m.key?.toString('utf8') ?? null,
    }
    const d = new StreamDecoder(stream).decode(m.value)
    if (!d.ok)
      return {
        stream: stream.name,
        message,
        deadLetter: { reason: d.reason, detail: d.detail },
        campaigns: [],
      }
    const campaigns = snapshot.definitions.campaigns.filter(
      (c) => 'stream' in c.trigger && c.trigger.stream === stream.name,
    )
    const out = []
    for (const c of campaigns) {
      const version = snapshot.versions.get(`campaign:${c.name}`) ?? 1
      const ids = Array.from(
        { length: version },
        (_, i) => `${c.name}@${i + 1}/${topic}/${partition}/${offset}`,
      )
      const recorded = [...(await this.deps.history.getMany(ids)).values()] as Activation[]
      const compiled = snapshot.compiled.get(c.name)
      const runtime = compiled ? campaignRuntime(compiled, version) : undefined
      const trigger: TriggerItem = {
        source: { kind: 'stream', topic, partition, offset: offset.toString() },
        customerKey: d.key ?? m.key?.toString('utf8') ?? '',
        eventTime: d.eventTime ?? Number(m.timestamp),
        scope: {
          event: d.event,
          meta: {
            topic,
            partition: BigInt(partition),
            offset: offset.toString(),
            timestamp: new Date(Number(m.timestamp)),
            key: m.key?.toString('utf8') ?? '',
          },
        },
      }
      out.push({
        campaign: c.name,
        status: c.status ?? 'draft',
        version,
        /** What happened: the recorded activation(s), if any. */
        recorded: recorded.map((a) => ({
          id: a.id,
          version: a.campaignVersion,
          status: a.status,
          cell: a.cell,
          reason: a.reason,
          outputTime: new Date(a.outputTime).toISOString(),
        })),
        /** Why, re-evaluated now against the current definitions and Pull Marketing data. */
        explanation: runtime ? await this.#explain(runtime, trigger) : undefined,
        note:
          c.status !== 'active'
            ? `the campaign is ${c.status ?? 'draft'}: the engine does not run it`
            : undefined,
      })
    }
    return { stream: stream.name, message, deadLetter: undefined, campaigns: out }
  }
}
