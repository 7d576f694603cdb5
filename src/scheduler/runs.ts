/**
 * Run records and run leases, in Riffle's own database (SQLite or PostgreSQL).
 *
 * A run record is created once per run, with a deterministic id for a scheduled time
 * (`<campaign>.<epoch ms>`), so that of several processes sharing PostgreSQL only the one whose
 * INSERT lands fires it. A lease row per campaign (taken with one atomic INSERT … ON CONFLICT …
 * WHERE expired) keeps two runs of one campaign from overlapping; it is renewed while the run
 * works and left to expire when the process dies, after which the run is resumed.
 */
import type { MigrationStep, SqlDatabase } from '../db/sql.js'
import { riffleError } from '../errors.js'

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'skipped'
export type RunTrigger = 'manual' | 'schedule' | 'catch-up'

export interface RunRecord {
  id: string
  campaign: string
  campaignVersion: number
  trigger: RunTrigger
  /** The scheduled time this run is for (epoch ms); null for manual runs. */
  scheduledFor: number | null
  status: RunStatus
  /** The process that runs (or ran) it. */
  owner: string
  createdAt: number
  startedAt: number | null
  endedAt: number | null
  /** Rows the audience selected (counted before the first batch); null until counted. */
  rowsSelected: number | null
  /** Rows done: the completed batches' rows. Progress is rowsDone / rowsSelected. */
  rowsDone: number
  batchesDone: number
  /** The key of the last row of the last completed batch: a resumed run starts after it. */
  cursor: string | number | null
  /** Activations recorded, per status (sent, holdout, suppressed, failed, error). */
  activations: Record<string, number>
  /** Outputs per channel and status, e.g. `pull:ok`, `kafka:ok`, `webhook:failed`. */
  outputs: Record<string, number>
  /** Problems, each naming its cause; a run with errors never ends as `succeeded`. */
  errors: string[]
  /** Why it was skipped, or how it ended. */
  message: string | null
}

const MIGRATIONS: MigrationStep[] = [
  {
    id: '001-runs',
    sql: `create table if not exists riffle_runs (
  id text primary key,
  campaign text not null,
  campaign_version integer not null,
  trigger text not null,
  scheduled_for bigint,
  status text not null,
  owner text not null,
  created_at bigint not null,
  started_at bigint,
  ended_at bigint,
  rows_selected bigint,
  rows_done bigint not null default 0,
  batches_done integer not null default 0,
  cursor text,
  activations text not null default '{}',
  outputs text not null default '{}',
  errors text not null default '[]',
  message text
);
create index if not exists riffle_runs_campaign on riffle_runs (campaign, created_at);
create index if not exists riffle_runs_status on riffle_runs (status);
create table if not exists riffle_run_leases (
  campaign text primary key,
  run_id text not null,
  owner text not null,
  expires_at bigint not null
)`,
  },
]

interface Row {
  id: string
  campaign: string
  campaign_version: number
  trigger: RunTrigger
  scheduled_for: number | string | null
  status: RunStatus
  owner: string
  created_at: number | string
  started_at: number | string | null
  ended_at: number | string | null
  rows_selected: number | string | null
  rows_done: number | string
  batches_done: number
  cursor: string | null
  activations: string
  outputs: string
  errors: string
  message: string | null
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v))

function fromRow(r: Row): RunRecord {
  return {
    id: r.id,
    campaign: r.campaign,
    campaignVersion: Number(r.campaign_version),
    trigger: r.trigger,
    scheduledFor: num(r.scheduled_for),
    status: r.status,
    owner: r.owner,
    createdAt: Number(r.created_at),
    startedAt: num(r.started_at),
    endedAt: num(r.ended_at),
    rowsSelected: num(r.rows_selected),
    rowsDone: Number(r.rows_done),
    batchesDone: Number(r.batches_done),
    cursor: r.cursor === null ? null : (JSON.parse(r.cursor) as string | number),
    activations: JSON.parse(r.activations) as Record<string, number>,
    outputs: JSON.parse(r.outputs) as Record<string, number>,
    errors: JSON.parse(r.errors) as string[],
    message: r.message,
  }
}

export class RunStore {
  private constructor(readonly db: SqlDatabase) {}

  static async open(db: SqlDatabase): Promise<RunStore> {
    await db.migrate('scheduler', MIGRATIONS)
    return new RunStore(db)
  }

  /** Creates the record; false when a record with this id exists (another process fired it). */
  async create(r: {
    id: string
    campaign: string
    campaignVersion: number
    trigger: RunTrigger
    scheduledFor: number | null
    status: RunStatus
    owner: string
    now: number
    message?: string
  }): Promise<boolean> {
    const { changes } = await this.db.run(
      `insert into riffle_runs (id, campaign, campaign_version, trigger, scheduled_for, status, owner, created_at, started_at, ended_at, message)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict (id) do nothing`,
      [
        r.id,
        r.campaign,
        r.campaignVersion,
        r.trigger,
        r.scheduledFor,
        r.status,
        r.owner,
        r.now,
        r.status === 'running' ? r.now : null,
        r.status === 'skipped' ? r.now : null,
        r.message ?? null,
      ],
    )
    return changes === 1
  }

  async get(id: string): Promise<RunRecord> {
    const r = await this.db.get<Row>('select * from riffle_runs where id = ?', [id])
    if (!r) throw riffleError('RIFFLE_NOT_FOUND', `no run "${id}"`)
    return fromRow(r)
  }

  async list(q: { campaign?: string; status?: string; limit?: number } = {}): Promise<RunRecord[]> {
    const where: string[] = []
    const params: unknown[] = []
    if (q.campaign) {
      where.push('campaign = ?')
      params.push(q.campaign)
    }
    if (q.status) {
      where.push('status = ?')
      params.push(q.status)
    }
    params.push(Math.min(Math.max(q.limit ?? 50, 1), 1000))
    const rows = await this.db.all<Row>(
      `select * from riffle_runs ${where.length ? `where ${where.join(' and ')}` : ''} order by created_at desc, id desc limit ?`,
      params,
    )
    return rows.map(fromRow)
  }

  async setSelected(id: string, rows: number): Promise<void> {
    await this.db.run('update riffle_runs set rows_selected = ? where id = ?', [rows, id])
  }

  /** Records a completed batch: progress, cursor and the running totals. */
  async progress(
    id: string,
    p: {
      rowsDone: number
      batchesDone: number
      cursor: string | number | null
      activations: Record<string, number>
      outputs: Record<string, number>
      errors: string[]
    },
  ): Promise<void> {
    await this.db.run(
      'update riffle_runs set rows_done = ?, batches_done = ?, cursor = ?, activations = ?, outputs = ?, errors = ? where id = ?',
      [
        p.rowsDone,
        p.batchesDone,
        p.cursor === null ? null : JSON.stringify(p.cursor),
        JSON.stringify(p.activations),
        JSON.stringify(p.outputs),
        JSON.stringify(p.errors),
        id,
      ],
    )
  }

  async finish(
    id: string,
    status: RunStatus,
    now: number,
    errors: string[],
    message: string | null,
  ): Promise<void> {
    await this.db.run(
      'update riffle_runs set status = ?, ended_at = ?, errors = ?, message = ? where id = ?',
      [status, now, JSON.stringify(errors), message, id],
    )
  }

  /** Takes the run over (resume): a new owner and start. */
  async takeOver(id: string, owner: string): Promise<void> {
    await this.db.run('update riffle_runs set owner = ? where id = ?', [owner, id])
  }

  /** Runs left `running` whose lease is gone or expired: their process died. */
  async orphans(now: number): Promise<RunRecord[]> {
    const rows = await this.db.all<Row>(
      `select r.* from riffle_runs r left join riffle_run_leases l on l.campaign = r.campaign
        where r.status = 'running' and (l.campaign is null or l.expires_at < ? or l.run_id <> r.id)
        order by r.created_at`,
      [now],
    )
    return rows.map(fromRow)
  }

  /** Takes the campaign's lease for this run, when it is free or expired. One atomic statement. */
  async acquireLease(
    campaign: string,
    runId: string,
    owner: string,
    now: number,
    ttlMs: number,
  ): Promise<boolean> {
    const { changes } = await this.db.run(
      `insert into riffle_run_leases (campaign, run_id, owner, expires_at) values (?, ?, ?, ?)
       on conflict (campaign) do update set run_id = excluded.run_id, owner = excluded.owner, expires_at = excluded.expires_at
       where riffle_run_leases.expires_at < ? or (riffle_run_leases.run_id = excluded.run_id and riffle_run_leases.owner = excluded.owner)`,
      [campaign, runId, owner, now + ttlMs, now],
    )
    return changes === 1
  }

  /** Extends the lease; false when it was lost (expired and taken by another process). */
  async renewLease(
    campaign: string,
    runId: string,
    owner: string,
    now: number,
    ttlMs: number,
  ): Promise<boolean> {
    const { changes } = await this.db.run(
      'update riffle_run_leases set expires_at = ? where campaign = ? and run_id = ? and owner = ?',
      [now + ttlMs, campaign, runId, owner],
    )
    return changes === 1
  }

  async releaseLease(campaign: string, runId: string, owner: string): Promise<void> {
    await this.db.run('delete from riffle_run_leases where campaign = ? and run_id = ? and owner = ?', [
      campaign,
      runId,
      owner,
    ])
  }

  async leaseHolder(campaign: string, now: number): Promise<string | undefined> {
    const r = await this.db.get<{ run_id: string }>(
      'select run_id from riffle_run_leases where campaign = ? and expires_at >= ?',
      [campaign, now],
    )
    return r?.run_id
  }
}
