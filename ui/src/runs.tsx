/** Runs of scheduled and manual campaigns: lists, progress and details, refreshed while a run goes. */
import { useState } from 'react'
import { api, enc } from './api'
import { ErrorBox, useInterval } from './components'
import { Link } from './router'

export interface RunRecord {
  id: string
  campaign: string
  campaignVersion: number
  trigger: string
  scheduledFor: number | null
  status: 'running' | 'succeeded' | 'failed' | 'skipped' | string
  owner: string
  createdAt: number
  startedAt: number | null
  endedAt: number | null
  rowsSelected: number | null
  rowsDone: number
  batchesDone: number
  cursor: string | number | null
  activations: Record<string, number>
  outputs: Record<string, number>
  errors: string[]
  message: string | null
}

/** How often a list or a run is read again: every second while one runs, else every 5 s. */
export const FAST_MS = 1000
export const SLOW_MS = 5000

/** Starts a run of a scheduled or manual campaign now (202 with the run; 409 while one goes). */
export function runNow(campaign: string): Promise<RunRecord> {
  return api<RunRecord>(`/api/v1/campaigns/${enc(campaign)}/run`, { body: {} })
}

/** The newest runs (of one campaign, or of all), re-read every second while any of them runs. */
export function useRuns(q: { campaign?: string; status?: string; limit?: number }): {
  runs: RunRecord[] | null
  error: unknown
  add: (r: RunRecord) => void
} {
  const [runs, setRuns] = useState<RunRecord[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  const going = (runs ?? []).some((r) => r.status === 'running')
  const params = new URLSearchParams({ limit: String(q.limit ?? 20) })
  if (q.campaign) params.set('campaign', q.campaign)
  if (q.status) params.set('status', q.status)
  const url = `/api/v1/runs?${params}`
  useInterval(
    () => {
      api<{ items: RunRecord[] }>(url).then(
        (r) => {
          setRuns(r.items)
          setError(null)
        },
        (e) => setError(e),
      )
    },
    going ? FAST_MS : SLOW_MS,
    url,
  )
  return {
    runs,
    error,
    add: (r) => setRuns((list) => [r, ...(list ?? []).filter((x) => x.id !== r.id)]),
  }
}

export function fmtEpoch(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '—' : new Date(ms).toLocaleString()
}

export function fmtDuration(run: RunRecord, now = Date.now()): string {
  if (run.startedAt === null) return '—'
  const ms = (run.endedAt ?? now) - run.startedAt
  if (ms < 1000) return `${ms} ms`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
}

const num = new Intl.NumberFormat('en')

/** Rows done out of rows selected, as a progress bar and in words. */
export function RunProgress(props: { run: RunRecord }) {
  const r = props.run
  if (r.status === 'skipped') return <span className="muted">skipped</span>
  const total = r.rowsSelected
  const pct = total ? Math.min(100, Math.floor((r.rowsDone * 100) / total)) : total === 0 ? 100 : null
  return (
    <div className="run-progress">
      <progress
        aria-label={`Progress of run ${r.id}`}
        max={total ? total : 1}
        value={total ? Math.min(r.rowsDone, total) : total === 0 ? 1 : undefined}
      />
      <span className="run-rows">
        {num.format(r.rowsDone)} of {total === null ? '…' : num.format(total)} rows
        {pct !== null ? ` (${pct}%)` : ''}
      </span>
    </div>
  )
}

function counts(m: Record<string, number>): string {
  const parts = Object.entries(m)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${num.format(n)}`)
  return parts.length ? parts.join(', ') : '—'
}

/** Outputs per channel: `pull:ok` → channel pull, status ok. */
export function outputsByChannel(outputs: Record<string, number>): Array<[string, Record<string, number>]> {
  const by = new Map<string, Record<string, number>>()
  for (const [k, n] of Object.entries(outputs)) {
    const at = k.lastIndexOf(':')
    const channel = at > 0 ? k.slice(0, at) : k
    const status = at > 0 ? k.slice(at + 1) : 'count'
    by.set(channel, { ...by.get(channel), [status]: n })
  }
  return [...by].sort(([a], [b]) => a.localeCompare(b))
}

export function RunsTable(props: { runs: RunRecord[]; caption: string; showCampaign?: boolean }) {
  if (props.runs.length === 0) return <p className="muted">No runs yet.</p>
  return (
    <table className="runs">
      <caption className="sr-only">{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Run</th>
          {props.showCampaign !== false && <th scope="col">Campaign</th>}
          <th scope="col">Trigger</th>
          <th scope="col">Status</th>
          <th scope="col">Progress</th>
          <th scope="col">Started</th>
          <th scope="col">Took</th>
          <th scope="col">Activations</th>
          <th scope="col">Outputs</th>
          <th scope="col">Errors</th>
        </tr>
      </thead>
      <tbody>
        {props.runs.map((r) => (
          <tr key={r.id}>
            <td>
              <Link to={`/history/runs/${enc(r.id)}`}>{r.id}</Link>
            </td>
            {props.showCampaign !== false && (
              <td>
                {r.campaign} v{r.campaignVersion}
              </td>
            )}
            <td>{r.trigger}</td>
            <td>
              <span className={`status ${r.status}`}>{r.status}</span>
            </td>
            <td>
              <RunProgress run={r} />
            </td>
            <td>{fmtEpoch(r.startedAt ?? r.createdAt)}</td>
            <td>{fmtDuration(r)}</td>
            <td>{counts(r.activations)}</td>
            <td>
              {outputsByChannel(r.outputs).map(([ch, by]) => (
                <div key={ch}>
                  {ch}: {counts(by)}
                </div>
              ))}
              {Object.keys(r.outputs).length === 0 && '—'}
            </td>
            <td>
              {r.errors.length === 0 ? (
                '—'
              ) : (
                <span className="error" title={r.errors.join('\n')}>
                  {r.errors.length}: {r.errors[0]}
                </span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

/** One run in full, re-read every second while it runs. */
export function RunDetail(props: { id: string }) {
  const [run, setRun] = useState<RunRecord | null>(null)
  const [error, setError] = useState<unknown>(null)
  useInterval(
    () => {
      api<RunRecord>(`/api/v1/runs/${enc(props.id)}`).then((r) => {
        setRun(r)
        setError(null)
      }, setError)
    },
    !run || run.status === 'running' ? FAST_MS : SLOW_MS,
    props.id,
  )
  return (
    <section>
      <p>
        <Link to="/history">← History and runs</Link>
      </p>
      <h1>Run {props.id}</h1>
      <ErrorBox error={error} />
      {run && (
        <>
          <dl className="facts">
            <dt>Campaign</dt>
            <dd>
              <Link to={`/campaigns/${enc(run.campaign)}`}>{run.campaign}</Link> v{run.campaignVersion}
            </dd>
            <dt>Status</dt>
            <dd>
              <span className={`status ${run.status}`}>{run.status}</span>
              {run.message && <span className="muted"> — {run.message}</span>}
            </dd>
            <dt>Progress</dt>
            <dd>
              <RunProgress run={run} />
              <span className="muted">
                {run.batchesDone} batch{run.batchesDone === 1 ? '' : 'es'} done
              </span>
            </dd>
            <dt>Trigger</dt>
            <dd>
              {run.trigger}
              {run.scheduledFor !== null && ` for ${fmtEpoch(run.scheduledFor)}`}
            </dd>
            <dt>Started</dt>
            <dd>{fmtEpoch(run.startedAt)}</dd>
            <dt>Ended</dt>
            <dd>{fmtEpoch(run.endedAt)}</dd>
            <dt>Took</dt>
            <dd>{fmtDuration(run)}</dd>
            <dt>Process</dt>
            <dd>{run.owner}</dd>
          </dl>
          <h2>Activations</h2>
          <table className="compact">
            <caption className="sr-only">Activations per status</caption>
            <thead>
              <tr>
                <th scope="col">Status</th>
                <th scope="col">Activations</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(run.activations).map(([k, n]) => (
                <tr key={k}>
                  <td>
                    <span className={`status ${k}`}>{k}</span>
                  </td>
                  <td className="num">{num.format(n)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Outputs per channel</h2>
          <table className="compact">
            <caption className="sr-only">Outputs per channel</caption>
            <thead>
              <tr>
                <th scope="col">Channel</th>
                <th scope="col">Outcomes</th>
              </tr>
            </thead>
            <tbody>
              {outputsByChannel(run.outputs).map(([ch, by]) => (
                <tr key={ch}>
                  <th scope="row">{ch}</th>
                  <td>{counts(by)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Errors</h2>
          {run.errors.length === 0 ? (
            <p className="muted">None.</p>
          ) : (
            <ul className="issues">
              {run.errors.map((e, i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: errors may repeat
                <li key={i}>{e}</li>
              ))}
            </ul>
          )}
          <p>
            <Link to={`/history?campaign=${enc(run.campaign)}`}>Activations of {run.campaign}</Link>
          </p>
        </>
      )}
    </section>
  )
}
