/**
 * Semantic validation of a complete set of definitions: references, types, CEL and Liquid, names,
 * topics, and the product's rule that real-time campaigns use only the event and the Pull
 * Marketing database. It also compiles every expression, once, for the engine and the scheduler.
 */

import type { Environment } from '@marcbachmann/cel-js'
import { Cron } from 'croner'
import { type Issue, type TextSpan, textSpan } from '../errors.js'
import {
  assignable,
  type CelScope,
  type CompiledCel,
  checkCel,
  checkEnvironment,
  compileChecked,
  displayType,
} from '../expressions/cel.js'
import { type CompiledTemplate, checkTemplate } from '../expressions/liquid.js'
import { splitWhere } from '../expressions/split.js'
import {
  Campaign,
  Collection,
  DataStoreSettings as DataStoreSchema,
  type DataStoreSettings,
  type Definitions,
  type FieldType,
  Stream,
} from './schema.js'
import { issueAt, type PathSegment, type SourceDocument } from './source.js'
import { structuralIssues } from './structure.js'

/** A definition and where it came from: a path in the file being applied, or the current state. */
export interface Located<T = unknown> {
  value: T
  path: PathSegment[]
  source?: SourceDocument | undefined
}

export interface DefinitionsInput {
  streams: Located[]
  collections: Located[]
  campaigns: Located[]
  datastore?: Located | undefined
}

/** A campaign with every expression compiled; built once per applied version. */
export interface CompiledCampaign {
  campaign: Campaign
  kind: 'realtime' | 'scheduled'
  key: CompiledCel | undefined
  enrich: Array<{ collection: string; key: CompiledCel; as: string }>
  where: CompiledCel | undefined
  /** The conjuncts of `where` that need only the event: run before any lookup. */
  whereEvent: CompiledCel | undefined
  /** The rest of `where`: run after enrichment. */
  whereRest: CompiledCel | undefined
  dedupeKey: CompiledCel | undefined
  content: Array<{
    name: string
    evaluate: CompiledCel | undefined
    render: CompiledTemplate | undefined
    /** The names in scope a template reads (its variables' first segments); none for CEL. */
    reads: string[]
  }>
  outputs: Array<
    | { kind: 'kafka'; topic: string; key: CompiledCel | undefined }
    | {
        kind: 'pull'
        collection: string
        key: CompiledCel
        set: Array<{ field: string; value: CompiledCel }>
        unset: string[]
        onlyIfNewer: boolean
      }
    | { kind: 'webhook'; url: string; timeoutMs: number; retries: number; headers: Record<string, string> }
  >
}

export interface ValidationResult {
  issues: Issue[]
  definitions: Definitions
  compiled: Map<string, CompiledCampaign>
}

const RESERVED = new Set([
  'event',
  'meta',
  'row',
  'content',
  'campaign',
  'cell',
  'now',
  'null',
  'true',
  'false',
  'in',
])
const TOPIC = /^[A-Za-z0-9._-]{1,249}$/

export function topicProblem(topic: string): string | undefined {
  if (topic === '.' || topic === '..') return `"${topic}" is not a valid Kafka topic name`
  if (!TOPIC.test(topic)) {
    return `"${topic}" is not a valid Kafka topic name: use 1-249 characters of letters, digits, ".", "_" and "-"`
  }
  return undefined
}

export function parseDurationMs(d: string): number {
  const m = /^([0-9]+)(ms|s|m|h|d|w)$/.exec(d)
  if (!m) throw new Error(`invalid duration ${d}`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'ms']
  return Number(m[1]) * unit
}

class Collector {
  readonly issues: Issue[] = []
  add(at: Located, rel: PathSegment[], message: string, span?: TextSpan): void {
    const issue = issueAt(at.source, [...at.path, ...rel], message)
    this.issues.push(span ? { ...issue, span } : issue)
  }
}

function nameOf(v: unknown): string | undefined {
  return typeof v === 'object' && v !== null && typeof (v as { name?: unknown }).name === 'string'
    ? (v as { name: string }).name
    : undefined
}

export function validateDefinitions(input: DefinitionsInput): ValidationResult {
  const c = new Collector()

  // 1. Structure, item by item, so one bad item does not hide the others.
  const structurallyValid = (items: Located[], schema: typeof Stream | typeof Collection | typeof Campaign) =>
    items.filter((at) => {
      const found = structuralIssues(schema, at.value)
      for (const s of found) c.add(at, s.path, s.message)
      return found.length === 0
    })
  const streamsAt = structurallyValid(input.streams, Stream)
  const collectionsAt = structurallyValid(input.collections, Collection)
  const campaignsAt = structurallyValid(input.campaigns, Campaign)
  let datastore: DataStoreSettings | undefined
  if (input.datastore) {
    const found = structuralIssues(DataStoreSchema, input.datastore.value)
    for (const s of found) c.add(input.datastore, s.path, s.message)
    if (found.length === 0) datastore = input.datastore.value as DataStoreSettings
  }

  // 2. Unique names.
  for (const [kind, items] of [
    ['stream', input.streams],
    ['collection', input.collections],
    ['campaign', input.campaigns],
  ] as const) {
    const first = new Map<string, Located>()
    for (const at of items) {
      const name = nameOf(at.value)
      if (name === undefined) continue
      const prev = first.get(name)
      if (prev) c.add(at, ['name'], `duplicate ${kind} name "${name}" (also at ${describeAt(prev)})`)
      else first.set(name, at)
    }
  }

  const streams = new Map<string, Stream>()
  const topics = new Map<string, string>()
  for (const at of streamsAt) {
    const s = at.value as Stream
    if (!streams.has(s.name)) streams.set(s.name, s)
    checkStream(c, at, s)
    const other = topics.get(s.topic)
    if (other !== undefined && other !== s.name) {
      c.add(
        at,
        ['topic'],
        `topic "${s.topic}" is already the topic of stream "${other}"; define one stream per topic`,
      )
    } else topics.set(s.topic, s.name)
  }
  const collections = new Map<string, Collection>()
  for (const at of collectionsAt) {
    const col = at.value as Collection
    if (!collections.has(col.name)) collections.set(col.name, col)
    checkFieldNames(c, at, col.fields)
  }

  const compiled = new Map<string, CompiledCampaign>()
  for (const at of campaignsAt) {
    const campaign = at.value as Campaign
    const result = checkCampaign(c, at, campaign, streams, collections, datastore)
    if (result && !compiled.has(campaign.name)) compiled.set(campaign.name, result)
  }

  return {
    issues: sortIssues(c.issues),
    definitions: {
      streams: streamsAt.map((a) => a.value as Stream),
      collections: collectionsAt.map((a) => a.value as Collection),
      campaigns: campaignsAt.map((a) => a.value as Campaign),
      datastore,
    },
    compiled,
  }
}

function describeAt(at: Located): string {
  const pos = at.source?.locate(at.path)
  return pos ? `line ${pos.line}` : at.path.join('.')
}

function checkFieldNames(c: Collector, at: Located, fields: ReadonlyArray<{ name: string }>): void {
  const seen = new Set<string>()
  fields.forEach((f, i) => {
    if (seen.has(f.name)) c.add(at, ['fields', i, 'name'], `duplicate field name "${f.name}"`)
    seen.add(f.name)
  })
}

function checkStream(c: Collector, at: Located, s: Stream): void {
  const topic = topicProblem(s.topic)
  if (topic) c.add(at, ['topic'], topic)
  if (s.dlq !== undefined) {
    const dlq = topicProblem(s.dlq)
    if (dlq) c.add(at, ['dlq'], dlq)
    else if (s.dlq === s.topic) c.add(at, ['dlq'], 'the dead-letter topic must differ from the stream topic')
  }
  checkFieldNames(c, at, s.fields)
  const byName = new Map(s.fields.map((f) => [f.name, f]))
  const key = byName.get(s.key)
  if (!key)
    c.add(
      at,
      ['key'],
      `unknown field "${s.key}": the key must be one of the stream's fields (${[...byName.keys()].join(', ')})`,
    )
  else if (key.type !== 'string' && key.type !== 'integer') {
    c.add(
      at,
      ['key'],
      `the key field "${s.key}" has type ${key.type}; a customer key must be string or integer`,
    )
  }
  if (s.time !== undefined) {
    const t = byName.get(s.time)
    if (!t)
      c.add(
        at,
        ['time'],
        `unknown field "${s.time}": the event-time field must be one of the stream's fields`,
      )
    else if (t.type !== 'timestamp')
      c.add(at, ['time'], `the event-time field "${s.time}" has type ${t.type}; it must be timestamp`)
  }
}

function checkCampaign(
  c: Collector,
  at: Located,
  campaign: Campaign,
  streams: Map<string, Stream>,
  collections: Map<string, Collection>,
  _datastore: DataStoreSettings | undefined,
): CompiledCampaign | undefined {
  const before = c.issues.length
  const trigger = campaign.trigger
  const realtime = 'stream' in trigger
  let stream: Stream | undefined
  if ('stream' in trigger) {
    stream = streams.get(trigger.stream)
    if (!stream) {
      c.add(at, ['trigger', 'stream'], `unknown stream "${trigger.stream}"${known(streams)}`)
      return undefined
    }
    if (campaign.audience) {
      c.add(
        at,
        ['audience'],
        'a real-time (stream-triggered) campaign may use only the event and the Pull Marketing database; `audience` reads the data store',
      )
    }
  } else {
    if ('schedule' in trigger) {
      try {
        new Cron(trigger.schedule, { paused: true, timezone: trigger.timezone ?? 'UTC' })
      } catch (e) {
        const msg = (e as Error).message
        const path = /time ?zone/i.test(msg) ? ['trigger', 'timezone'] : ['trigger', 'schedule']
        c.add(at, path, `invalid ${path[1]}: ${msg}`)
      }
      if (trigger.timezone !== undefined && !validTimeZone(trigger.timezone)) {
        c.add(at, ['trigger', 'timezone'], `unknown IANA time zone "${trigger.timezone}"`)
      }
    }
    const a = campaign.audience
    if (!a || (a.sql === undefined && a.table === undefined)) {
      c.add(at, ['audience'], 'a scheduled campaign needs an audience: `sql` or `table`')
    } else if (a.sql !== undefined && a.table !== undefined) {
      c.add(at, ['audience'], 'give either `sql` or `table`, not both')
    } else if (a.sql !== undefined && !/^\s*(select|with)\b/i.test(a.sql)) {
      c.add(
        at,
        ['audience', 'sql'],
        'the audience must be a read-only SQL query starting with SELECT or WITH',
      )
    }
  }

  const base: CelScope = realtime
    ? { event: stream, meta: true, now: true, campaign: true }
    : { row: true, now: true, campaign: true }
  const realtimeRule = (name: string) =>
    realtime && name === 'row'
      ? 'a real-time (stream-triggered) campaign may use only the event and the Pull Marketing database; `row` refers to the data store'
      : undefined

  const compile = (
    env: Environment,
    rel: PathSegment[],
    expr: string,
    expect?: (t: string) => string | undefined,
  ) => {
    const r = checkCel(env, expr)
    if (!r.ok) {
      const rule = r.unknownVariable ? realtimeRule(r.unknownVariable) : undefined
      const where = r.offset !== undefined ? ` (at character ${r.offset + 1})` : ''
      const span = r.offset !== undefined ? textSpan(expr, r.offset, r.end) : undefined
      c.add(
        at,
        rel,
        rule ? `${rule}, in \`${expr}\`` : `CEL error in \`${expr}\`${where}: ${r.message}`,
        span,
      )
      return undefined
    }
    const problem = expect?.(r.type)
    if (problem) {
      // The whole expression has the wrong type: mark all of it.
      c.add(at, rel, `${problem} in \`${expr}\``, textSpan(expr, 0, expr.length))
      return undefined
    }
    return r
  }
  const keyType = (t: string) =>
    ['string', 'int', 'uint', 'dyn'].includes(t) || t.startsWith('dyn')
      ? undefined
      : `a key must be a string or an integer, but this has type ${displayType(t)}`

  // Enrichment: keys may use the trigger's data; aliases are added to the scope in order.
  const aliases: Record<string, Collection> = {}
  const enrichEnv = checkEnvironment(base)
  const enrich: CompiledCampaign['enrich'] = []
  campaign.enrich?.forEach((e, i) => {
    const col = collections.get(e.collection)
    if (!col)
      c.add(at, ['enrich', i, 'collection'], `unknown collection "${e.collection}"${known(collections)}`)
    if (RESERVED.has(e.as))
      c.add(at, ['enrich', i, 'as'], `"${e.as}" is a reserved name; choose another alias`)
    else if (aliases[e.as]) c.add(at, ['enrich', i, 'as'], `duplicate alias "${e.as}"`)
    const key = compile(enrichEnv, ['enrich', i, 'key'], e.key, keyType)
    if (col && !RESERVED.has(e.as) && !aliases[e.as]) {
      aliases[e.as] = col
      if (key) enrich.push({ collection: e.collection, key: key.evaluate, as: e.as })
    }
  })

  const scope: CelScope = { ...base, aliases }
  const env = checkEnvironment(scope)
  const key = campaign.key !== undefined ? compile(env, ['key'], campaign.key, keyType) : undefined
  const where =
    campaign.where !== undefined
      ? compile(env, ['where'], campaign.where, (t) =>
          t === 'bool' || t === 'dyn'
            ? undefined
            : `a condition must be bool, but this has type ${displayType(t)}`,
        )
      : undefined

  if (campaign.audience?.where !== undefined && !realtime)
    compile(env, ['audience', 'where'], campaign.audience.where)

  const variants = campaign.cells?.variants
  if (variants) {
    const names = new Set<string>()
    variants.forEach((v, i) => {
      if (names.has(v.name) || v.name === 'holdout')
        c.add(at, ['cells', 'variants', i, 'name'], `duplicate cell name "${v.name}"`)
      names.add(v.name)
    })
  }

  const dedupe = campaign.controls?.dedupe
  const dedupeKey = dedupe ? compile(env, ['controls', 'dedupe', 'key'], dedupe.key) : undefined

  if (campaign.startAt && campaign.endAt && Date.parse(campaign.startAt) >= Date.parse(campaign.endAt)) {
    c.add(at, ['endAt'], 'endAt must be after startAt')
  }

  // Content: CEL or Liquid; its types are known to the outputs through `content`.
  const content: CompiledCampaign['content'] = []
  const contentTypes: Record<string, string> = {}
  for (const [name, value] of Object.entries(campaign.content ?? {})) {
    if (typeof value === 'string') {
      const r = compile(env, ['content', name], value)
      if (r) {
        content.push({ name, evaluate: r.evaluate, render: undefined, reads: [] })
        contentTypes[name] = r.type
      } else contentTypes[name] = 'dyn'
    } else {
      const t = checkTemplate(value.template)
      if (!t.ok) {
        const pos = t.line !== undefined ? ` (template line ${t.line}, column ${t.column})` : ''
        c.add(
          at,
          ['content', name, 'template'],
          `Liquid error${pos}: ${t.message}`,
          t.offset !== undefined ? textSpan(value.template, t.offset, t.end) : undefined,
        )
      } else {
        for (const segs of t.roots) {
          const problem = templateReference(segs, scope, realtime)
          if (problem) c.add(at, ['content', name, 'template'], problem)
        }
        content.push({
          name,
          evaluate: undefined,
          render: t.render,
          reads: [...new Set(t.roots.map((segs) => String(segs[0])))],
        })
      }
      contentTypes[name] = 'string'
    }
  }

  const outEnv = checkEnvironment({ ...scope, content: contentTypes })
  const outputs: CompiledCampaign['outputs'] = []
  campaign.outputs?.forEach((o, i) => {
    if ('kafka' in o) {
      const tp = topicProblem(o.kafka.topic)
      if (tp) c.add(at, ['outputs', i, 'kafka', 'topic'], tp)
      if (stream && o.kafka.topic === stream.topic) {
        c.add(
          at,
          ['outputs', i, 'kafka', 'topic'],
          'writing to the trigger stream’s own topic would trigger this campaign again',
        )
      }
      const k =
        o.kafka.key !== undefined
          ? compile(outEnv, ['outputs', i, 'kafka', 'key'], o.kafka.key, keyType)
          : undefined
      outputs.push({ kind: 'kafka', topic: o.kafka.topic, key: k?.evaluate })
    } else if ('pull' in o) {
      const p = o.pull
      const col = collections.get(p.collection)
      if (!col) {
        c.add(
          at,
          ['outputs', i, 'pull', 'collection'],
          `unknown collection "${p.collection}"${known(collections)}`,
        )
        return
      }
      const fields = new Map(col.fields.map((f) => [f.name, f.type]))
      const k = compile(outEnv, ['outputs', i, 'pull', 'key'], p.key, keyType)
      const set: Array<{ field: string; value: CompiledCel }> = []
      for (const [field, expr] of Object.entries(p.set ?? {})) {
        const ft = fields.get(field)
        if (!ft) {
          c.add(
            at,
            ['outputs', i, 'pull', 'set', field],
            `unknown field "${field}" in collection "${col.name}"${knownFields(col)}`,
          )
          continue
        }
        const r = compile(outEnv, ['outputs', i, 'pull', 'set', field], expr, (t) =>
          assignable(t, ft as FieldType)
            ? undefined
            : `type mismatch: field "${field}" is ${ft}, but the value has type ${displayType(t)}`,
        )
        if (r) set.push({ field, value: r.evaluate })
      }
      p.unset?.forEach((field, j) => {
        if (!fields.has(field))
          c.add(
            at,
            ['outputs', i, 'pull', 'unset', j],
            `unknown field "${field}" in collection "${col.name}"`,
          )
      })
      if (!p.set && !p.unset) c.add(at, ['outputs', i, 'pull'], 'a pull output needs `set` or `unset`')
      if (p.onlyIfNewer && !realtime) {
        c.add(
          at,
          ['outputs', i, 'pull', 'onlyIfNewer'],
          '`onlyIfNewer` compares event times, so it needs a stream trigger',
        )
      }
      if (k)
        outputs.push({
          kind: 'pull',
          collection: p.collection,
          key: k.evaluate,
          set,
          unset: p.unset ?? [],
          onlyIfNewer: p.onlyIfNewer ?? false,
        })
    } else {
      const w = o.webhook
      let url: URL | undefined
      try {
        url = new URL(w.url)
      } catch {
        c.add(at, ['outputs', i, 'webhook', 'url'], `"${w.url}" is not a valid URL`)
      }
      if (url && url.protocol !== 'http:' && url.protocol !== 'https:') {
        c.add(
          at,
          ['outputs', i, 'webhook', 'url'],
          `scheme "${url.protocol}" is not allowed; use http or https`,
        )
      }
      if (url?.username || url?.password) {
        c.add(
          at,
          ['outputs', i, 'webhook', 'url'],
          'credentials in the URL would be logged and stored; put them in `headers`',
        )
      }
      outputs.push({
        kind: 'webhook',
        url: w.url,
        timeoutMs: parseDurationMs(w.timeout ?? '2s'),
        retries: w.retries ?? 3,
        headers: w.headers ?? {},
      })
    }
  })

  if (c.issues.length > before) return undefined
  return {
    campaign,
    kind: realtime ? 'realtime' : 'scheduled',
    key: key?.evaluate,
    enrich,
    where: where?.evaluate,
    ...splitCompiled(campaign.where, where !== undefined, new Set(Object.keys(aliases))),
    dedupeKey: dedupeKey?.evaluate,
    content,
    outputs,
  }
}

function templateReference(
  segs: Array<string | number>,
  scope: CelScope,
  realtime: boolean,
): string | undefined {
  const root = String(segs[0])
  const field = segs[1]
  const shape = root === 'event' ? scope.event : scope.aliases?.[root]
  if (shape) {
    if (typeof field === 'string' && !shape.fields.some((f) => f.name === field)) {
      return `unknown field "${field}" of \`${root}\` in the template`
    }
    return undefined
  }
  if (root === 'row' && realtime) {
    return 'a real-time (stream-triggered) campaign may use only the event and the Pull Marketing database; the template uses `row`'
  }
  const ok =
    ['meta', 'campaign', 'cell', 'now', 'forloop', 'tablerowloop'].includes(root) ||
    (root === 'row' && scope.row)
  return ok ? undefined : `unknown name \`${root}\` in the template`
}

function known(m: Map<string, unknown>): string {
  return m.size ? ` (defined: ${[...m.keys()].join(', ')})` : ' (none is defined)'
}
function knownFields(col: Collection): string {
  return ` (fields: ${col.fields.map((f) => f.name).join(', ')})`
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

/** Issues in file order where lines are known, so that a person reads them top to bottom. */
function sortIssues(issues: Issue[]): Issue[] {
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => {
      const la = a.issue.line ?? Number.MAX_SAFE_INTEGER
      const lb = b.issue.line ?? Number.MAX_SAFE_INTEGER
      return la - lb || (a.issue.column ?? 0) - (b.issue.column ?? 0) || a.i - b.i
    })
    .map((x) => x.issue)
}

function splitCompiled(
  where: string | undefined,
  ok: boolean,
  aliases: ReadonlySet<string>,
): { whereEvent: CompiledCel | undefined; whereRest: CompiledCel | undefined } {
  if (where === undefined || !ok) return { whereEvent: undefined, whereRest: undefined }
  const { eventOnly, rest } = splitWhere(where, aliases)
  try {
    return {
      whereEvent: eventOnly === undefined ? undefined : compileChecked(eventOnly),
      whereRest: rest === undefined ? undefined : compileChecked(rest),
    }
  } catch {
    // A split the parser does not accept: evaluate the whole condition after enrichment.
    return { whereEvent: undefined, whereRest: compileChecked(where) }
  }
}
