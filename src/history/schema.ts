/**
 * The output history's tables, its record as the API and the exports show it, and the conversions
 * between the two. One TypeBox schema gives the API's validation, serialization and OpenAPI.
 */
import Type, { type Static } from 'typebox'
import type { MigrationStep } from '../db/sql.js'
import type { Activation, ActivationStatus } from './activation.js'

export const ACTIVATION_STATUSES = [
  'sent',
  'holdout',
  'suppressed',
  'expired',
  'failed',
  'error',
] as const satisfies readonly ActivationStatus[]

/**
 * `seq` is the insertion order (export watermarks compare it); `id` is the activation id (appends are
 * idempotent on it). Times are epoch milliseconds. `content` and `deliveries` are JSON text.
 *
 * Indexes, each for one read:
 * - `(output_time, seq)`: time ranges, newest first, and the retention purge;
 * - `(campaign, output_time, seq)`: one campaign over a time range;
 * - `(customer_key, output_time, …)`: the per-customer view, and frequency caps (count of `sent`
 *   since T for many keys), covering status and campaign so a cap read never touches the table.
 *   On SQLite this one lives in a derived file instead (migration 002, customers.ts).
 * On SQLite `seq` is the rowid, which every index carries already.
 */
export const HISTORY_MIGRATIONS: MigrationStep[] = [
  {
    id: '001-history',
    sql: {
      sqlite: `create table if not exists history_activations (
  seq integer primary key autoincrement,
  id text not null unique,
  campaign text not null,
  campaign_version integer not null,
  cell text not null,
  customer_key text not null,
  source_topic text,
  source_partition integer,
  source_offset text,
  source_run text,
  status text not null,
  event_time bigint,
  output_time bigint not null,
  content text not null,
  deliveries text not null,
  reason text
);
create index if not exists history_by_time on history_activations (output_time);
create index if not exists history_by_campaign on history_activations (campaign, output_time);
create index if not exists history_by_customer on history_activations (customer_key, output_time, status, campaign);
create table if not exists history_consumers (
  name text primary key,
  watermark bigint not null,
  pending_to bigint,
  created_at bigint not null,
  last_export_at bigint,
  exported bigint not null default 0
)`,
      postgres: `create table if not exists history_activations (
  seq bigint generated always as identity primary key,
  id text not null unique,
  campaign text not null,
  campaign_version integer not null,
  cell text not null,
  customer_key text not null,
  source_topic text,
  source_partition integer,
  source_offset text,
  source_run text,
  status text not null,
  event_time bigint,
  output_time bigint not null,
  content text not null,
  deliveries text not null,
  reason text
);
create index if not exists history_by_time on history_activations (output_time, seq);
create index if not exists history_by_campaign on history_activations (campaign, output_time, seq);
create index if not exists history_by_customer on history_activations (customer_key, output_time, seq) include (status, campaign);
create table if not exists history_consumers (
  name text primary key,
  watermark bigint not null,
  pending_to bigint,
  created_at bigint not null,
  last_export_at bigint,
  exported bigint not null default 0
)`,
    },
  },
  {
    // SQLite: the per-customer index moves to a derived file kept by a worker thread (customers.ts);
    // history_info names this history, so that the index notices a replaced file, and records the
    // last purge for the index to follow.
    id: '002-customer-index',
    sql: {
      sqlite: `drop index if exists history_by_customer;
create table if not exists history_info (
  id integer primary key check (id = 1),
  instance text not null,
  purge_cutoff bigint not null default 0,
  purge_floor bigint not null default 0
);
insert or ignore into history_info (id, instance) values (1, lower(hex(randomblob(16))))`,
      postgres: 'select 1',
    },
  },
]

/** The stored columns, in the order appends and exports use them. */
export const COLUMNS = [
  'seq',
  'id',
  'campaign',
  'campaign_version',
  'cell',
  'customer_key',
  'source_topic',
  'source_partition',
  'source_offset',
  'source_run',
  'status',
  'event_time',
  'output_time',
  'content',
  'deliveries',
  'reason',
] as const

/** One stored row, as both databases return it. */
export interface HistoryRow {
  seq: number
  id: string
  campaign: string
  campaign_version: number
  cell: string
  customer_key: string
  source_topic: string | null
  source_partition: number | null
  source_offset: string | null
  source_run: string | null
  status: ActivationStatus
  event_time: number | null
  output_time: number
  content: string
  deliveries: string
  reason: string | null
}

/** One stored row as an array in `COLUMNS` order: what exports read, without an object per row. */
export type RawRow = [
  seq: number,
  id: string,
  campaign: string,
  campaignVersion: number,
  cell: string,
  customerKey: string,
  sourceTopic: string | null,
  sourcePartition: number | null,
  sourceOffset: string | null,
  sourceRun: string | null,
  status: string,
  eventTime: number | null,
  outputTime: number,
  content: string,
  deliveries: string,
  reason: string | null,
]

/** One activation as the output history keeps it: the record plus its place in insertion order. */
export interface HistoryEntry extends Activation {
  /** Insertion order; increases with every appended record. */
  seq: number
}

export function entryFromRow(r: HistoryRow): HistoryEntry {
  const entry: HistoryEntry = {
    seq: Number(r.seq),
    id: r.id,
    campaign: r.campaign,
    campaignVersion: Number(r.campaign_version),
    cell: r.cell,
    customerKey: r.customer_key,
    source:
      r.source_run !== null
        ? { kind: 'run', runId: r.source_run }
        : {
            kind: 'stream',
            topic: r.source_topic ?? '',
            partition: Number(r.source_partition),
            offset: r.source_offset ?? '',
          },
    status: r.status,
    eventTime: r.event_time === null ? null : Number(r.event_time),
    outputTime: Number(r.output_time),
    content: JSON.parse(r.content),
    deliveries: JSON.parse(r.deliveries),
  }
  if (r.reason !== null) entry.reason = r.reason
  return entry
}

const iso = (ms: number) => new Date(ms).toISOString()

const Source = Type.Union(
  [
    Type.Object({
      kind: Type.Literal('stream'),
      topic: Type.String(),
      partition: Type.Integer(),
      offset: Type.String({ description: 'The Kafka offset, as a decimal string.' }),
    }),
    Type.Object({ kind: Type.Literal('run'), runId: Type.String() }),
  ],
  { description: 'Where the activation came from: a Kafka message, or a scheduled run.' },
)

/** One activation as the API, the JSON Lines export and the Kafka mirror show it. */
export const HistoryRecord = Type.Object({
  seq: Type.Optional(Type.Integer({ description: 'Insertion order in the output history.' })),
  id: Type.String({ description: 'The activation id: campaign, version and source.' }),
  campaign: Type.String(),
  campaignVersion: Type.Integer(),
  cell: Type.String({ description: 'The cell: e.g. `treatment`, `holdout`, or an A/B cell.' }),
  customerKey: Type.String(),
  source: Source,
  status: Type.Enum([...ACTIVATION_STATUSES], {
    description:
      'sent, holdout (control group), suppressed (dedupe or frequency), expired, failed (an output failed), error.',
  }),
  eventTime: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  outputTime: Type.String({ format: 'date-time' }),
  content: Type.Record(Type.String(), Type.Unknown(), { description: 'The content fields.' }),
  deliveries: Type.Record(
    Type.String(),
    Type.Object({ status: Type.String(), detail: Type.Optional(Type.String()) }),
    { description: 'Delivery status per output channel, e.g. `kafka:campaign.offers`.' },
  ),
  reason: Type.Optional(Type.String({ description: 'Why it was suppressed, expired or failed.' })),
})
export type HistoryRecord = Static<typeof HistoryRecord>

/** The record with ISO 8601 times; `seq` when it is known. */
export function toRecord(a: Activation | HistoryEntry): HistoryRecord {
  const r: HistoryRecord = {
    ...('seq' in a ? { seq: a.seq } : {}),
    id: a.id,
    campaign: a.campaign,
    campaignVersion: a.campaignVersion,
    cell: a.cell,
    customerKey: a.customerKey,
    source: a.source,
    status: a.status,
    eventTime: a.eventTime === null ? null : iso(a.eventTime),
    outputTime: iso(a.outputTime),
    content: a.content,
    deliveries: a.deliveries as HistoryRecord['deliveries'],
  }
  if (a.reason !== undefined) r.reason = a.reason
  return r
}
