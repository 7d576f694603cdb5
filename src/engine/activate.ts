/**
 * One code path from trigger to outputs, shared by real-time and scheduled campaigns:
 * where (event part) → enrichment (one lookup per collection per batch) → where (rest) →
 * controls (max event age, dedupe, frequency) → cell → content → outputs → history.
 *
 * Every output carries the activation id, and every write is idempotent on it, so a replayed
 * batch (after a crash or a retry) changes nothing that was already done.
 */
import type { Activation, ActivationSource, ActivationStatus, DeliveryStatus } from '../history/activation.js'
import { activationId } from '../history/activation.js'
import type { PullStore, PullWrite } from '../pull/store.js'
import { assignCell, HOLDOUT } from './cells.js'
import type { DedupeStore } from './dedupe.js'
import { plain, toJson } from './json.js'
import type { CampaignRuntime } from './plan.js'
import type { WebhookSender } from './webhook.js'

/** One event (real-time) or one row (scheduled) that may activate a campaign. */
export interface TriggerItem {
  source: ActivationSource
  customerKey: string
  /** Epoch ms: the event time (or the Kafka timestamp); null for rows. */
  eventTime: number | null
  /** The names in scope: `{ event, meta }` or `{ row }`. */
  scope: Record<string, unknown>
}

/** What the engine needs from the output history. */
export interface HistoryPort {
  append(batch: readonly Activation[]): Promise<unknown>
  countRecent(q: {
    customerKeys: readonly string[]
    campaign?: string
    since: number
    statuses?: readonly ActivationStatus[]
  }): Promise<Map<string, number>>
  /** The activations among these ids that are already recorded (a replay). */
  getMany(ids: readonly string[]): Promise<Map<string, Activation>>
}

export interface ActivateDeps {
  pull: PullStore
  history: HistoryPort
  dedupe: DedupeStore
  webhooks: WebhookSender
  now?: () => number
  /**
   * Called between the batch's steps. The engine lets I/O callbacks run there (setImmediate), so
   * that the previous batch's Kafka transaction, in flight meanwhile, is not held up by a whole
   * batch of evaluation.
   */
  yieldToIo?: () => Promise<void>
}

export interface KafkaRecord {
  topic: string
  key: string
  value: string
  headers: Record<string, string>
}

/** One step of a dry run or trace: what was decided and why. */
export interface DecisionStep {
  step: string
  result: string
  detail?: unknown
}

/** Per campaign and trigger, what a dry run decided and what it would have written. */
export interface Explanation {
  campaign: string
  version: number
  activationId: string
  customerKey: string
  fired: boolean
  status: ActivationStatus | 'not_matched' | 'outside_dates' | undefined
  cell: string | undefined
  content: Record<string, unknown>
  steps: DecisionStep[]
  outputs: Array<{ channel: string; wouldWrite: unknown }>
}

export interface ActivateOptions {
  /** Decide and explain, write nothing (no pull writes, webhooks, dedupe state or history). */
  dryRun?: boolean
}

export interface BatchOutcome {
  activations: Activation[]
  /** Kafka output records, to be produced in the same transaction as the consumed offsets. */
  kafka: KafkaRecord[]
  /** Activations per campaign and cell, for the metrics. */
  counts: Map<string, number>
  /** Outputs per channel and status, for the metrics. */
  outputs: Map<string, number>
  /** With `dryRun`: the decisions, step by step. */
  explain: Explanation[]
  /** Activations of this batch that were already recorded (a replay): their decisions stood. */
  replayed: Activation[]
}

/** An output channel failed in a way a retry can fix (store or webhook target down): retry the batch. */
export class RetryableOutputError extends Error {
  constructor(
    message: string,
    readonly channel: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'RetryableOutputError'
  }
}

interface Candidate {
  campaign: CampaignRuntime
  trigger: TriggerItem
  id: string
  scope: Record<string, unknown>
  status: ActivationStatus | undefined
  reason: string | undefined
  cell: string
  content: Record<string, unknown>
  recorded: Activation | undefined
  dedupeKey: string | undefined
  /** Only in a dry run. */
  steps?: DecisionStep[]
  wouldWrite?: Array<{ channel: string; wouldWrite: unknown }>
}

function note(c: Candidate, step: string, result: string, detail?: unknown): void {
  c.steps?.push(detail === undefined ? { step, result } : { step, result, detail })
}

const WEBHOOK_CONCURRENCY = 32

function errorText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e)
  return m.split('\n')[0]!.slice(0, 300)
}

function truthy(v: unknown): boolean {
  return v === true
}

export async function activateBatch(
  work: Array<{ campaign: CampaignRuntime; triggers: TriggerItem[] }>,
  deps: ActivateDeps,
  opts: ActivateOptions = {},
): Promise<BatchOutcome> {
  const now = deps.now?.() ?? Date.now()
  const dry = opts.dryRun ?? false
  const all: Candidate[] = []
  const outside: Candidate[] = []
  // `campaign` and `now` are read-only in every expression: one object each, shared by the batch.
  const nowDate = new Date(now)
  const nowIso = nowDate.toISOString()
  for (const { campaign, triggers } of work) {
    const notYet = campaign.startAt !== undefined && now < campaign.startAt
    const over = campaign.endAt !== undefined && now > campaign.endAt
    if ((notYet || over) && !dry) continue
    const campaignScope = { name: campaign.name, version: BigInt(campaign.version) }
    for (const trigger of triggers) {
      ;(notYet || over ? outside : all).push({
        campaign,
        trigger,
        id: activationId(campaign.name, campaign.version, trigger.source, trigger.customerKey),
        scope: { ...trigger.scope, campaign: campaignScope, now: nowDate },
        status: undefined,
        reason: undefined,
        cell: '',
        content: {},
        recorded: undefined,
        dedupeKey: undefined,
        ...(dry ? { steps: [], wouldWrite: [] } : {}),
      })
      if (notYet || over)
        note(outside[outside.length - 1]!, 'dates', notYet ? 'before startAt' : 'after endAt')
    }
  }
  const outcome: BatchOutcome = {
    activations: [],
    kafka: [],
    counts: new Map(),
    outputs: new Map(),
    explain: [],
    replayed: [],
  }
  if (dry) outcome.explain.push(...outside.map((c) => explanation(c, 'outside_dates')))
  if (all.length === 0) return outcome
  const breathe = deps.yieldToIo ?? (async () => {})

  // A replay: activations already recorded keep their decision, cell and content.
  const existing = await deps.history.getMany(all.map((c) => c.id))
  for (const c of all) {
    const rec = existing.get(c.id)
    if (rec) {
      c.recorded = rec
      c.status = rec.status
      c.cell = rec.cell
      c.content = rec.content
      note(c, 'replay', `already recorded as ${rec.status}; the recorded decision stands`)
    }
  }

  const notMatched: Candidate[] = []
  // 1. where, the event-only part: before any lookup.
  let live = all.filter((c) => {
    if (c.recorded) return true
    const f = c.campaign.compiled.whereEvent
    if (!f) return true
    try {
      const ok = truthy(f(c.scope))
      note(c, 'where (event part)', ok ? 'true' : 'false')
      if (!ok) notMatched.push(c)
      return ok
    } catch (e) {
      c.status = 'error'
      c.reason = `where: ${errorText(e)}`
      note(c, 'where (event part)', 'error', c.reason)
      return true
    }
  })

  // 2. Enrichment: one getMany per collection for the whole batch, duplicate keys removed.
  await breathe()
  await enrich(live, deps.pull)

  // 3. where, the rest.
  live = live.filter((c) => {
    if (c.recorded || c.status) return true
    const f = c.campaign.compiled.whereRest
    if (!f) return true
    try {
      const ok = truthy(f(c.scope))
      note(c, 'where (after enrichment)', ok ? 'true' : 'false')
      if (!ok) notMatched.push(c)
      return ok
    } catch (e) {
      c.status = 'error'
      c.reason = `where: ${errorText(e)}`
      note(c, 'where (after enrichment)', 'error', c.reason)
      return true
    }
  })
  if (dry) outcome.explain.push(...notMatched.map((c) => explanation(c, 'not_matched')))

  // 4. Controls: max event age, dedupe, frequency.
  await breathe()
  for (const c of live) {
    if (c.status || c.recorded) continue
    const age = c.campaign.maxEventAgeMs
    if (age !== undefined && c.trigger.eventTime !== null && now - c.trigger.eventTime > age) {
      c.status = 'expired'
      c.reason = `the event is ${Math.round((now - c.trigger.eventTime) / 1000)} s old; maxEventAge is ${Math.round(age / 1000)} s`
      note(c, 'maxEventAge', 'expired', c.reason)
    }
  }
  await applyDedupe(live, deps.dedupe, now)
  await applyFrequency(live, deps.history, now)
  for (const c of live) {
    if (c.status === 'suppressed')
      note(c, c.reason?.startsWith('dedupe') ? 'dedupe' : 'frequency', 'suppressed', c.reason)
  }

  // 5. Cell, content, outputs.
  await breathe()
  const pullWrites = new Map<string, PullWrite[]>()
  const pullOwners = new Map<string, Candidate[]>()
  const webhooks: Array<{
    c: Candidate
    index: number
    url: string
    body: string
    timeoutMs: number
    retries: number
    headers: Record<string, string>
  }> = []
  let rendered = 0
  for (const c of live) {
    if (++rendered % 1000 === 0) await breathe()
    if (!c.recorded && !c.status) {
      c.cell = assignCell(c.campaign.cells, c.campaign.name, c.trigger.customerKey)
      note(c, 'cell', c.cell)
      try {
        c.content = renderContent(c)
        c.status = c.cell === HOLDOUT ? 'holdout' : 'sent'
        note(c, 'content', 'rendered', c.content)
      } catch (e) {
        c.status = 'error'
        c.reason = `content: ${errorText(e)}`
        note(c, 'content', 'error', c.reason)
      }
    }
    if (c.status !== 'sent') continue
    const outScope = { ...c.scope, cell: c.cell, content: c.content }
    const record = activationRecord(c, now, nowIso)
    const deliveries: Record<string, DeliveryStatus> = {}
    try {
      c.campaign.compiled.outputs.forEach((o, index) => {
        if (o.kind === 'kafka') {
          const key = o.key ? String(plain(o.key(outScope))) : c.trigger.customerKey
          outcome.kafka.push({
            topic: o.topic,
            key,
            value: toJson(record),
            headers: { 'riffle-activation-id': c.id },
          })
          deliveries[`kafka:${o.topic}`] = { status: 'ok' }
        } else if (o.kind === 'pull') {
          const key = String(plain(o.key(outScope)))
          const set: Record<string, unknown> = {}
          for (const s of o.set) set[s.field] = plain(s.value(outScope))
          const w: PullWrite = { key, writer: c.campaign.writer }
          if (o.set.length) w.set = set
          if (o.unset.length) w.unset = o.unset
          if (o.onlyIfNewer && c.trigger.eventTime !== null) {
            w.onlyIfNewer = true
            w.eventTime = c.trigger.eventTime
          }
          c.wouldWrite?.push({ channel: `pull:${o.collection}`, wouldWrite: w })
          const list = pullWrites.get(o.collection) ?? []
          list.push(w)
          pullWrites.set(o.collection, list)
          const owners = pullOwners.get(o.collection) ?? []
          owners.push(c)
          pullOwners.set(o.collection, owners)
          deliveries[`pull:${o.collection}`] = { status: 'ok' }
        } else {
          const channel = `webhook:${index}`
          if (c.recorded?.deliveries[channel]?.status === 'ok') {
            deliveries[channel] = { status: 'ok' }
            return
          }
          webhooks.push({
            c,
            index,
            url: o.url,
            body: toJson(record),
            timeoutMs: o.timeoutMs,
            retries: o.retries,
            headers: o.headers,
          })
          deliveries[channel] = { status: 'ok' }
        }
      })
    } catch (e) {
      c.status = 'error'
      c.reason = `outputs: ${errorText(e)}`
      continue
    }
    ;(c as Candidate & { deliveries?: Record<string, DeliveryStatus> }).deliveries = deliveries
  }

  if (dry) {
    outcome.explain.push(...live.map((c) => explanation(c, c.status)))
    outcome.kafka = []
    return outcome
  }

  // 6. Deliver: the Pull Marketing database, then webhooks. A retryable failure fails the batch.
  await breathe()
  for (const [collection, writes] of pullWrites) {
    const owners = pullOwners.get(collection) ?? []
    for (const { index, error } of await writeIsolating(deps.pull, collection, writes)) {
      const c = owners[index]!
      c.status = 'failed'
      c.reason = `pull:${collection}: ${errorText(error)}`
      deliveriesOf(c)[`pull:${collection}`] = { status: 'failed', detail: errorText(error) }
    }
  }
  await deliverWebhooks(webhooks, deps.webhooks)

  // 7. Dedupe state and the output history. Kafka outputs and offsets follow, in one transaction.
  await breathe()
  const remember: Array<{ campaign: string; key: string; expiresAt: number }> = []
  for (const c of live) {
    if (!c.status) continue
    if (c.dedupeKey !== undefined && !c.recorded && (c.status === 'sent' || c.status === 'holdout')) {
      remember.push({
        campaign: c.campaign.name,
        key: c.dedupeKey,
        expiresAt: now + c.campaign.dedupeWindowMs!,
      })
    }
    const a = c.recorded ?? activationRecordFull(c, now, deliveriesOf(c))
    if (!c.recorded) outcome.activations.push(a)
    else outcome.replayed.push(a)
    const k = `${c.campaign.name}\u0000${c.cell || '-'}\u0000${c.status}`
    outcome.counts.set(k, (outcome.counts.get(k) ?? 0) + 1)
    for (const [ch, d] of Object.entries(a.deliveries)) {
      const ok = `${channelKind(ch)}\u0000${d.status}`
      outcome.outputs.set(ok, (outcome.outputs.get(ok) ?? 0) + 1)
    }
  }
  await deps.dedupe.remember(remember, now)
  if (outcome.activations.length) await deps.history.append(outcome.activations)
  // Kafka outputs of replayed `sent` activations were aborted with their transaction: produce them again.
  return outcome
}

/**
 * Writes a batch to the Pull Marketing database. A write the store refuses (a key too long, a value
 * of the wrong type) fails the whole batch, atomically; the batch is then split in halves, and
 * halves again, until the refused writes stand alone: they are returned, every other write is
 * made. A retryable failure (the store is down) fails the batch for a retry; what was written
 * already is written again then, which changes nothing (the writes are idempotent).
 */
async function writeIsolating(
  pull: PullStore,
  collection: string,
  writes: PullWrite[],
  offset = 0,
): Promise<Array<{ index: number; error: unknown }>> {
  try {
    await pull.write(collection, writes)
    return []
  } catch (e) {
    if ((e as { retryable?: boolean }).retryable !== false)
      throw new RetryableOutputError(
        `pull store write to "${collection}" failed: ${errorText(e)}`,
        `pull:${collection}`,
        { cause: e },
      )
    if (writes.length === 1) return [{ index: offset, error: e }]
    const half = Math.ceil(writes.length / 2)
    return [
      ...(await writeIsolating(pull, collection, writes.slice(0, half), offset)),
      ...(await writeIsolating(pull, collection, writes.slice(half), offset + half)),
    ]
  }
}

function deliveriesOf(c: Candidate): Record<string, DeliveryStatus> {
  const x = c as Candidate & { deliveries?: Record<string, DeliveryStatus> }
  x.deliveries ??= {}
  return x.deliveries
}

async function enrich(live: Candidate[], pull: PullStore): Promise<void> {
  const byCollection = new Map<string, Set<string>>()
  const wanted: Array<{ c: Candidate; as: string; collection: string; key: string | null }> = []
  for (const c of live) {
    if (c.status === 'error') continue
    for (const e of c.campaign.compiled.enrich) {
      let key: string | null = null
      try {
        const k = e.key(c.scope)
        key = k === null || k === undefined ? null : String(plain(k))
      } catch (err) {
        c.status = 'error'
        c.reason = `enrich ${e.as}: ${errorText(err)}`
        break
      }
      if (key !== null && key !== '') {
        const set = byCollection.get(e.collection) ?? new Set<string>()
        set.add(key)
        byCollection.set(e.collection, set)
      }
      wanted.push({ c, as: e.as, collection: e.collection, key })
    }
  }
  const found = new Map<string, Map<string, Record<string, unknown>>>()
  for (const [collection, keys] of byCollection) {
    const list = [...keys]
    let records: Awaited<ReturnType<PullStore['getMany']>>
    try {
      records = await pull.getMany(collection, list)
    } catch (e) {
      throw new RetryableOutputError(
        `pull store lookup in "${collection}" failed: ${errorText(e)}`,
        `pull:${collection}`,
        { cause: e },
      )
    }
    const m = new Map<string, Record<string, unknown>>()
    records.forEach((r, i) => {
      if (r) m.set(list[i]!, r.fields)
    })
    found.set(collection, m)
  }
  for (const w of wanted) {
    w.c.scope[w.as] = w.key === null ? null : (found.get(w.collection)?.get(w.key) ?? null)
  }
}

async function applyDedupe(live: Candidate[], dedupe: DedupeStore, now: number): Promise<void> {
  const byCampaign = new Map<string, Candidate[]>()
  for (const c of live) {
    if (c.status || c.recorded || !c.campaign.compiled.dedupeKey) continue
    try {
      c.dedupeKey = String(plain(c.campaign.compiled.dedupeKey(c.scope)))
    } catch (e) {
      c.status = 'error'
      c.reason = `dedupe key: ${errorText(e)}`
      continue
    }
    const list = byCampaign.get(c.campaign.name) ?? []
    list.push(c)
    byCampaign.set(c.campaign.name, list)
  }
  for (const [campaign, list] of byCampaign) {
    const seen = await dedupe.seen(
      campaign,
      list.map((c) => c.dedupeKey!),
      now,
    )
    for (const c of list) {
      if (seen.has(c.dedupeKey!)) {
        c.status = 'suppressed'
        c.reason = `dedupe: key "${c.dedupeKey}" already acted on within ${Math.round(c.campaign.dedupeWindowMs! / 1000)} s`
      } else seen.add(c.dedupeKey!) // a second event with the same key in this batch
    }
  }
}

async function applyFrequency(live: Candidate[], history: HistoryPort, now: number): Promise<void> {
  const groups = new Map<string, Candidate[]>()
  for (const c of live) {
    if (c.status || c.recorded || !c.campaign.frequency) continue
    const f = c.campaign.frequency
    const g = `${f.global ? '*' : c.campaign.name}\u0000${f.perMs}`
    const list = groups.get(g) ?? []
    list.push(c)
    groups.set(g, list)
  }
  for (const list of groups.values()) {
    const f = list[0]!.campaign.frequency!
    const counts = await history.countRecent({
      customerKeys: [...new Set(list.map((c) => c.trigger.customerKey))],
      ...(f.global ? {} : { campaign: list[0]!.campaign.name }),
      since: now - f.perMs,
      // A holdout activation is a contact decision too: counting it keeps the control group comparable.
      statuses: ['sent', 'holdout'],
    })
    for (const c of list) {
      const n = counts.get(c.trigger.customerKey) ?? 0
      const cap = c.campaign.frequency!
      if (n >= cap.max) {
        c.status = 'suppressed'
        c.reason = `frequency: ${n} activation(s) within ${Math.round(cap.perMs / 1000)} s; the cap is ${cap.max}`
      } else {
        // Activations earlier in this batch count too. A holdout activation also counts; it is a contact decision.
        counts.set(c.trigger.customerKey, n + 1)
      }
    }
  }
}

function renderContent(c: Candidate): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const scope = { ...c.scope, cell: c.cell }
  let liquidScope: Record<string, unknown> | undefined
  for (const item of c.campaign.compiled.content) {
    if (item.evaluate) out[item.name] = plain(item.evaluate(scope))
    else if (item.render) {
      liquidScope ??= plainScope(scope, c.campaign.compiled.content)
      out[item.name] = item.render(liquidScope)
    }
  }
  return out
}

/**
 * Liquid reads plain values: BigInt and Date become numbers and ISO strings. Only the names the
 * campaign's templates read are converted, once per activation for all its templates.
 */
function plainScope(
  scope: Record<string, unknown>,
  content: CampaignRuntime['compiled']['content'],
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const item of content)
    for (const k of item.reads) if (!(k in out) && Object.hasOwn(scope, k)) out[k] = plain(scope[k])
  return out
}

function sourceJson(s: ActivationSource): Record<string, unknown> {
  return s.kind === 'stream' ? { topic: s.topic, partition: s.partition, offset: s.offset } : { run: s.runId }
}

/** `kafka`, `pull` or `webhook`, from a delivery's channel name (`pull:profile`). */
function channelKind(channel: string): string {
  const i = channel.indexOf(':')
  return i < 0 ? channel : channel.slice(0, i)
}

/** The activation record as Kafka and webhooks receive it. */
function activationRecord(c: Candidate, now: number, nowIso: string): Record<string, unknown> {
  return {
    id: c.id,
    campaign: c.campaign.name,
    version: c.campaign.version,
    cell: c.cell,
    customerKey: c.trigger.customerKey,
    content: c.content,
    source: sourceJson(c.trigger.source),
    eventTime: c.trigger.eventTime === null ? null : new Date(c.trigger.eventTime).toISOString(),
    outputTime:
      c.recorded === undefined || c.recorded.outputTime === now
        ? nowIso
        : new Date(c.recorded.outputTime).toISOString(),
  }
}

function activationRecordFull(
  c: Candidate,
  now: number,
  deliveries: Record<string, DeliveryStatus>,
): Activation {
  return {
    id: c.id,
    campaign: c.campaign.name,
    campaignVersion: c.campaign.version,
    cell: c.cell,
    customerKey: c.trigger.customerKey,
    source: c.trigger.source,
    status: c.status!,
    eventTime: c.trigger.eventTime,
    outputTime: now,
    content: c.content,
    deliveries,
    ...(c.reason ? { reason: c.reason } : {}),
  }
}

async function deliverWebhooks(
  jobs: Array<{
    c: Candidate
    index: number
    url: string
    body: string
    timeoutMs: number
    retries: number
    headers: Record<string, string>
  }>,
  sender: WebhookSender,
): Promise<void> {
  let next = 0
  let retryable: RetryableOutputError | undefined
  const worker = async () => {
    while (next < jobs.length) {
      const j = jobs[next++]!
      const r = await sender.send({
        url: j.url,
        body: j.body,
        idempotencyKey: j.c.id,
        timeoutMs: j.timeoutMs,
        retries: j.retries,
        headers: j.headers,
      })
      const channel = `webhook:${j.index}`
      if (r.ok) continue
      if (r.retryable) {
        retryable ??= new RetryableOutputError(
          `webhook ${new URL(j.url).host} failed after ${r.attempts} attempt(s): ${r.detail}`,
          channel,
        )
        continue
      }
      j.c.status = 'failed'
      j.c.reason = `${channel}: ${r.detail}`
      deliveriesOf(j.c)[channel] = { status: 'failed', detail: r.detail }
    }
  }
  await Promise.all(Array.from({ length: Math.min(WEBHOOK_CONCURRENCY, jobs.length) }, worker))
  if (retryable) throw retryable
}

function explanation(c: Candidate, status: Explanation['status']): Explanation {
  return {
    campaign: c.campaign.name,
    version: c.campaign.version,
    activationId: c.id,
    customerKey: c.trigger.customerKey,
    fired: status === 'sent',
    status,
    cell: c.cell || undefined,
    content: c.content,
    steps: c.steps ?? [],
    outputs: status === 'sent' ? (c.wouldWrite ?? []) : [],
  }
}
