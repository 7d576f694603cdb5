/**
 * One TypeBox schema per concept. Each is the single source of truth for the TypeScript types,
 * the definitions file, API validation, the OpenAPI document and the reference docs.
 */
import Type, { type Static, type TSchema } from 'typebox'

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$'
export const IDENT_PATTERN = '^[A-Za-z_][A-Za-z0-9_]{0,99}$'
export const PATH_PATTERN = '^[A-Za-z_$][A-Za-z0-9_$-]*(\\.[A-Za-z_$][A-Za-z0-9_$-]*)*$'
export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d|w)$'

const Name = (description: string) => Type.String({ pattern: NAME_PATTERN, description })
const Ident = (description: string) => Type.String({ pattern: IDENT_PATTERN, description })
const Duration = (description: string) =>
  Type.String({
    pattern: DURATION_PATTERN,
    description: `${description} A number and a unit: ms, s, m, h, d or w (e.g. 24h).`,
  })
const Cel = (description: string) =>
  Type.String({ minLength: 1, description: `${description} (CEL expression)` })
const Doc = Type.Optional(
  Type.String({ maxLength: 2000, description: 'What this is for, shown in the designer.' }),
)

export const FIELD_TYPES = ['string', 'number', 'integer', 'boolean', 'timestamp', 'object', 'array'] as const
export type FieldType = (typeof FIELD_TYPES)[number]

export const FieldType = Type.Enum([...FIELD_TYPES], {
  description:
    'string; number (a double); integer (64-bit); boolean; timestamp (ISO 8601 or epoch milliseconds); object; array.',
})

/** A typed field of a stream's events. */
export const StreamField = Type.Object(
  {
    name: Ident('The field name, used as `event.<name>` in expressions.'),
    type: FieldType,
    required: Type.Optional(
      Type.Boolean({ description: 'An event without this field is dead-lettered. Default false.' }),
    ),
    path: Type.Optional(
      Type.String({
        pattern: PATH_PATTERN,
        description: 'Dotted path in the message, when it differs from the name (e.g. location.store_id).',
      }),
    ),
    description: Doc,
  },
  { additionalProperties: false },
)
export type StreamField = Static<typeof StreamField>

/** A Kafka message stream: defined once, it appears as an audience and a field set in the designer. */
export const Stream = Type.Object(
  {
    name: Name('Unique stream name.'),
    topic: Type.String({ minLength: 1, maxLength: 249, description: 'The Kafka topic.' }),
    format: Type.Optional(Type.Enum(['json'], { description: 'Message format. Default json.' })),
    key: Ident('The field that holds the customer key of each event.'),
    time: Type.Optional(
      Ident('A timestamp field that holds the event time; otherwise the Kafka timestamp is used.'),
    ),
    dlq: Type.Optional(
      Type.String({ minLength: 1, maxLength: 249, description: 'Dead-letter topic. Default `<topic>.dlq`.' }),
    ),
    description: Doc,
    fields: Type.Array(StreamField, { minItems: 1, description: 'The typed fields of each event.' }),
  },
  { additionalProperties: false },
)
export type Stream = Static<typeof Stream>

/** A typed field of a pull collection. */
export const CollectionField = Type.Object(
  {
    name: Ident('The field name, used as `<alias>.<name>` in expressions.'),
    type: FieldType,
    description: Doc,
  },
  { additionalProperties: false },
)
export type CollectionField = Static<typeof CollectionField>

/** One keyed record set in the Pull Marketing database. */
export const Collection = Type.Object(
  {
    name: Name('Unique collection name; also the Pull API path segment.'),
    key: Ident('Name of the record key (e.g. customer_id).'),
    ttl: Type.Optional(Duration('Records not written for this long expire.')),
    description: Doc,
    fields: Type.Array(CollectionField, { minItems: 1, description: 'The typed fields of each record.' }),
  },
  { additionalProperties: false },
)
export type Collection = Static<typeof Collection>

/** A table of the analytical data store, as offered to scheduled campaigns. */
export const DataStoreTable = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_.]*$', description: 'Table name.' }),
    key: Type.Optional(Ident('The customer key column.')),
    description: Doc,
  },
  { additionalProperties: false },
)

/** Settings of the analytical data store (the audience of scheduled campaigns only). */
export const DataStoreSettings = Type.Object(
  {
    key: Type.Optional(Ident('The default customer key column of audiences. Default customer_id.')),
    tables: Type.Optional(Type.Array(DataStoreTable, { description: 'Tables offered in the designer.' })),
    description: Doc,
  },
  { additionalProperties: false },
)
export type DataStoreSettings = Static<typeof DataStoreSettings>

export const CAMPAIGN_STATUSES = ['draft', 'active', 'paused', 'archived'] as const
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number]

export const StreamTrigger = Type.Object(
  { stream: Name('The stream whose every event triggers this campaign.') },
  { additionalProperties: false },
)
export const ScheduleTrigger = Type.Object(
  {
    schedule: Type.String({ minLength: 1, description: 'Cron expression (5 or 6 fields).' }),
    timezone: Type.Optional(Type.String({ minLength: 1, description: 'IANA time zone. Default UTC.' })),
  },
  { additionalProperties: false },
)
export const ManualTrigger = Type.Object(
  { manual: Type.Literal(true, { description: 'Runs only when started by hand or through the API.' }) },
  { additionalProperties: false },
)

export const Audience = Type.Object(
  {
    sql: Type.Optional(
      Type.String({ minLength: 1, description: 'A read-only SQL select over the data store.' }),
    ),
    table: Type.Optional(Type.String({ minLength: 1, description: 'A data store table (instead of sql).' })),
    where: Type.Optional(Cel('Filter over `row`, with `table`')),
    key: Type.Optional(Ident('The key column. Default the data store key, customer_id.')),
  },
  {
    additionalProperties: false,
    description: 'The audience of a scheduled campaign: rows of the data store.',
  },
)

export const Enrichment = Type.Object(
  {
    collection: Name('The pull collection to look up.'),
    key: Cel('The record key to look up'),
    as: Ident('The alias the record is known by in expressions; null when the record is missing.'),
  },
  { additionalProperties: false },
)

export const Cells = Type.Object(
  {
    holdout: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        description: 'Percent kept as a control group: recorded, no outputs.',
      }),
    ),
    variants: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Ident('Cell name, available as `cell` in expressions.'),
            weight: Type.Number({ exclusiveMinimum: 0, description: 'Relative weight.' }),
          },
          { additionalProperties: false },
        ),
        {
          minItems: 1,
          description: 'A/B split by weight; a stable hash of key and campaign picks the cell.',
        },
      ),
    ),
  },
  { additionalProperties: false },
)

export const Controls = Type.Object(
  {
    dedupe: Type.Optional(
      Type.Object(
        { key: Cel('The deduplication key'), window: Duration('How long a key is remembered.') },
        { additionalProperties: false },
      ),
    ),
    frequency: Type.Optional(
      Type.Object(
        {
          max: Type.Integer({ minimum: 1, description: 'Most activations per customer key within `per`.' }),
          per: Duration('The period.'),
          scope: Type.Optional(
            Type.Enum(['campaign', 'global'], {
              description: 'Count this campaign only (default) or all campaigns.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    maxEventAge: Type.Optional(Duration('Events older than this are recorded as expired and not acted on.')),
  },
  { additionalProperties: false },
)

export const ContentValue = Type.Union(
  [
    Type.String({ minLength: 1, description: 'A CEL expression.' }),
    Type.Object(
      { template: Type.String({ description: 'A Liquid template, rendered to text.' }) },
      { additionalProperties: false },
    ),
  ],
  { description: 'A CEL expression, or `{ template: … }` for Liquid text.' },
)

export const KafkaOutput = Type.Object(
  {
    kafka: Type.Object(
      {
        topic: Type.String({
          minLength: 1,
          maxLength: 249,
          description: 'Topic the activation record is written to.',
        }),
        key: Type.Optional(Cel('The message key; default the customer key')),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)
export const PullOutput = Type.Object(
  {
    pull: Type.Object(
      {
        collection: Name('The pull collection written.'),
        key: Cel('The record key'),
        set: Type.Optional(
          Type.Record(Type.String({ pattern: IDENT_PATTERN }), Cel('The value'), {
            description: 'Fields set (field-level merge).',
          }),
        ),
        unset: Type.Optional(Type.Array(Ident('A field removed.'))),
        onlyIfNewer: Type.Optional(
          Type.Boolean({
            description: 'Write only if the event time is newer than the record’s last write. Default false.',
          }),
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)
export const WebhookOutput = Type.Object(
  {
    webhook: Type.Object(
      {
        url: Type.String({
          minLength: 1,
          description: 'http or https URL; private addresses need an allow-list entry.',
        }),
        timeout: Type.Optional(Duration('Per attempt. Default 2s.')),
        retries: Type.Optional(
          Type.Integer({ minimum: 0, maximum: 10, description: 'Retries with backoff. Default 3.' }),
        ),
        headers: Type.Optional(
          Type.Record(Type.String(), Type.String(), { description: 'Extra request headers.' }),
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)
export const Output = Type.Union([KafkaOutput, PullOutput, WebhookOutput], {
  description: 'One output channel: `kafka`, `pull` or `webhook`.',
})
export type Output = Static<typeof Output>

/** A campaign: trigger + audience + enrichment + cells + controls + content + outputs. */
export const Campaign = Type.Object(
  {
    name: Name('Unique campaign name.'),
    description: Doc,
    status: Type.Optional(
      Type.Enum([...CAMPAIGN_STATUSES], {
        description: 'draft | active | paused | archived. In a file, default active.',
      }),
    ),
    trigger: Type.Union([StreamTrigger, ScheduleTrigger, ManualTrigger], {
      description:
        '`{ stream }` for real-time, `{ schedule, timezone }` or `{ manual: true }` for the data store.',
    }),
    audience: Type.Optional(Audience),
    key: Type.Optional(Cel('The customer key; default the stream’s key field or the audience key column')),
    enrich: Type.Optional(Type.Array(Enrichment, { description: 'Lookups in the Pull Marketing database.' })),
    where: Type.Optional(Cel('The condition for acting')),
    cells: Type.Optional(Cells),
    controls: Type.Optional(Controls),
    startAt: Type.Optional(Type.String({ format: 'date-time', description: 'Not acting before this time.' })),
    endAt: Type.Optional(Type.String({ format: 'date-time', description: 'Not acting after this time.' })),
    content: Type.Optional(
      Type.Record(Type.String({ pattern: IDENT_PATTERN }), ContentValue, {
        description: 'Named content fields.',
      }),
    ),
    outputs: Type.Optional(Type.Array(Output, { description: 'Where each activation goes.' })),
  },
  { additionalProperties: false },
)
export type Campaign = Static<typeof Campaign>

/** The definitions file applied with `riffle apply -f`. */
export const DefinitionsFile = Type.Object(
  {
    streams: Type.Optional(Type.Array(Stream)),
    collections: Type.Optional(Type.Array(Collection)),
    datastore: Type.Optional(DataStoreSettings),
    campaigns: Type.Optional(Type.Array(Campaign)),
  },
  { additionalProperties: false },
)
export type DefinitionsFile = Static<typeof DefinitionsFile>

export const KINDS = ['stream', 'collection', 'campaign', 'datastore'] as const
export type Kind = (typeof KINDS)[number]

export const SCHEMA_BY_KIND: Record<Kind, TSchema> = {
  stream: Stream,
  collection: Collection,
  campaign: Campaign,
  datastore: DataStoreSettings,
}

/** The current definitions, as the engine and the designer see them. */
export interface Definitions {
  streams: Stream[]
  collections: Collection[]
  datastore: DataStoreSettings | undefined
  campaigns: Campaign[]
}

/**
 * Orders an object's keys as its schema declares them (name first, then the rest), recursively,
 * so that exported definitions read like hand-written ones.
 */
export function orderLike(schema: TSchema, value: unknown): unknown {
  const s = schema as {
    type?: string
    properties?: Record<string, TSchema>
    items?: TSchema
    anyOf?: TSchema[]
    patternProperties?: Record<string, TSchema>
  }
  if (Array.isArray(value)) return s.items ? value.map((v) => orderLike(s.items!, v)) : value
  if (value === null || typeof value !== 'object') return value
  if (s.anyOf) {
    const keys = Object.keys(value)
    const branch = s.anyOf.find((b) => {
      const props = (b as { properties?: Record<string, unknown> }).properties
      return props && keys.every((k) => k in props)
    })
    return branch ? orderLike(branch, value) : value
  }
  const obj = value as Record<string, unknown>
  if (s.properties) {
    const out: Record<string, unknown> = {}
    for (const [k, sub] of Object.entries(s.properties)) if (k in obj) out[k] = orderLike(sub, obj[k])
    for (const k of Object.keys(obj)) if (!(k in out)) out[k] = obj[k]
    return out
  }
  if (s.patternProperties) {
    const sub = Object.values(s.patternProperties)[0]!
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, orderLike(sub, v)]))
  }
  return value
}
