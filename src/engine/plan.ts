/**
 * The engine's plan for one revision of the definitions: per topic, the stream's decoder and the
 * active campaigns on it, with every expression already compiled. Built once per revision.
 */
import type { Campaign, Stream } from '../definitions/schema.js'
import type { Snapshot } from '../definitions/service.js'
import { type CompiledCampaign, parseDurationMs } from '../definitions/validate.js'
import type { CellPlan } from './cells.js'
import { StreamDecoder } from './decode.js'

export interface CampaignRuntime {
  name: string
  version: number
  compiled: CompiledCampaign
  cells: CellPlan
  startAt: number | undefined
  endAt: number | undefined
  maxEventAgeMs: number | undefined
  dedupeWindowMs: number | undefined
  frequency: { max: number; perMs: number; global: boolean } | undefined
  /** Whether any output or where needs the enrichment lookups. */
  writer: string
}

export interface StreamPlan {
  stream: Stream
  decoder: StreamDecoder
  dlqTopic: string
  campaigns: CampaignRuntime[]
}

export interface EnginePlan {
  revision: number
  byTopic: Map<string, StreamPlan>
  /** Topics with at least one active campaign: the consumer's subscription. */
  topics: string[]
}

export function campaignRuntime(compiled: CompiledCampaign, version: number): CampaignRuntime {
  const c: Campaign = compiled.campaign
  return {
    name: c.name,
    version,
    compiled,
    cells: { holdoutPercent: c.cells?.holdout ?? 0, variants: c.cells?.variants ?? [] },
    startAt: c.startAt ? Date.parse(c.startAt) : undefined,
    endAt: c.endAt ? Date.parse(c.endAt) : undefined,
    maxEventAgeMs: c.controls?.maxEventAge ? parseDurationMs(c.controls.maxEventAge) : undefined,
    dedupeWindowMs: c.controls?.dedupe ? parseDurationMs(c.controls.dedupe.window) : undefined,
    frequency: c.controls?.frequency
      ? {
          max: c.controls.frequency.max,
          perMs: parseDurationMs(c.controls.frequency.per),
          global: c.controls.frequency.scope === 'global',
        }
      : undefined,
    writer: `campaign:${c.name}@${version}`,
  }
}

export function buildPlan(snapshot: Snapshot, opts: { maxMessageBytes?: number } = {}): EnginePlan {
  const byTopic = new Map<string, StreamPlan>()
  for (const stream of snapshot.definitions.streams) {
    const campaigns: CampaignRuntime[] = []
    for (const c of snapshot.definitions.campaigns) {
      if (!('stream' in c.trigger) || c.trigger.stream !== stream.name || c.status !== 'active') continue
      const compiled = snapshot.compiled.get(c.name)
      if (!compiled) continue
      campaigns.push(campaignRuntime(compiled, snapshot.versions.get(`campaign:${c.name}`) ?? 1))
    }
    if (campaigns.length === 0) continue
    const plan: StreamPlan = {
      stream,
      decoder: new StreamDecoder(stream, { maxBytes: opts.maxMessageBytes }),
      dlqTopic: stream.dlq ?? `${stream.topic}.dlq`,
      campaigns,
    }
    byTopic.set(stream.topic, plan) // validation allows one stream per topic
  }
  return { revision: snapshot.revision, byTopic, topics: [...byTopic.keys()].sort() }
}
