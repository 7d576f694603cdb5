import { type FormEvent, useState } from 'react'
import { type Activation, api, enc } from '../api'
import { ErrorBox, Field, fmtTime, useAsync } from '../components'
import { RunDetail, RunsTable, useRuns } from '../runs'

export function HistoryPage(props: { path: string }) {
  const runId = props.path.startsWith('/history/runs/')
    ? decodeURIComponent(props.path.slice('/history/runs/'.length))
    : ''
  if (runId) return <RunDetail key={runId} id={runId} />
  return (
    <>
      <h1>History and runs</h1>
      <Runs />
      <Activations />
    </>
  )
}

function Runs() {
  const [campaign, setCampaign] = useState('')
  const [status, setStatus] = useState('')
  const { runs, error } = useRuns({ campaign: campaign.trim(), status, limit: 20 })
  return (
    <section aria-labelledby="runs-heading">
      <h2 id="runs-heading">Scheduled and manual runs</h2>
      <div className="row filters">
        <Field label="Runs of campaign" id="r-campaign">
          <input id="r-campaign" value={campaign} onChange={(e) => setCampaign(e.target.value)} />
        </Field>
        <Field label="Run status" id="r-status">
          <select id="r-status" value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">any</option>
            {['running', 'succeeded', 'failed', 'skipped'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </Field>
      </div>
      <ErrorBox error={error} />
      {runs && <RunsTable runs={runs} caption="Runs, newest first" />}
    </section>
  )
}

function Activations() {
  const [filters, setFilters] = useState(() => ({
    campaign: new URLSearchParams(location.search).get('campaign') ?? '',
    customerKey: '',
    since: '24h',
    status: '',
  }))
  const [applied, setApplied] = useState(filters)
  const [pages, setPages] = useState<Activation[][]>([])
  const [cursor, setCursor] = useState<string | null>(null)
  const query = (c?: string | null) => {
    const q = new URLSearchParams({ limit: '50' })
    for (const [k, v] of Object.entries(applied)) if (v) q.set(k, v)
    if (c) q.set('cursor', c)
    return `/api/v1/history?${q}`
  }
  const first = useAsync(async () => {
    const r = await api<{ items: Activation[]; nextCursor: string | null }>(query())
    setPages([r.items])
    setCursor(r.nextCursor)
    return r
  }, [JSON.stringify(applied)])
  const [error, setError] = useState<unknown>(null)
  const more = async () => {
    try {
      const r = await api<{ items: Activation[]; nextCursor: string | null }>(query(cursor))
      setPages((p) => [...p, r.items])
      setCursor(r.nextCursor)
    } catch (e) {
      setError(e)
    }
  }
  const submit = (e: FormEvent) => {
    e.preventDefault()
    setApplied({ ...filters })
  }
  const rows = pages.flat()
  const exportCsv = () => {
    const head = [
      'outputTime',
      'campaign',
      'campaignVersion',
      'cell',
      'customerKey',
      'status',
      'reason',
      'content',
    ]
    const esc = (v: unknown) => `"${String(v ?? '').replaceAll('"', '""')}"`
    const lines = rows.map((a) =>
      [
        a.outputTime,
        a.campaign,
        a.campaignVersion,
        a.cell,
        a.customerKey,
        a.status,
        a.reason,
        JSON.stringify(a.content),
      ]
        .map(esc)
        .join(','),
    )
    const blob = new Blob([[head.join(','), ...lines].join('\n')], { type: 'text/csv' })
    const a = document.createElement('a')
    a.href = URL.createObjectURL(blob)
    a.download = 'riffle-history.csv'
    a.click()
    URL.revokeObjectURL(a.href)
  }
  const byCampaign = new Map<string, number>()
  for (const a of rows)
    byCampaign.set(
      `${a.campaign} / ${a.cell} / ${a.status}`,
      (byCampaign.get(`${a.campaign} / ${a.cell} / ${a.status}`) ?? 0) + 1,
    )

  return (
    <section aria-labelledby="activations-heading">
      <h2 id="activations-heading">Activations</h2>
      <form className="row filters" onSubmit={submit}>
        <Field label="Campaign" id="h-campaign">
          <input
            id="h-campaign"
            value={filters.campaign}
            onChange={(e) => setFilters({ ...filters, campaign: e.target.value })}
          />
        </Field>
        <Field label="Customer key" id="h-customer">
          <input
            id="h-customer"
            value={filters.customerKey}
            onChange={(e) => setFilters({ ...filters, customerKey: e.target.value })}
          />
        </Field>
        <Field label="Since" id="h-since">
          <input
            id="h-since"
            value={filters.since}
            placeholder="24h, 7d or a date"
            onChange={(e) => setFilters({ ...filters, since: e.target.value })}
          />
        </Field>
        <Field label="Status" id="h-status">
          <select
            id="h-status"
            value={filters.status}
            onChange={(e) => setFilters({ ...filters, status: e.target.value })}
          >
            <option value="">any</option>
            {['sent', 'holdout', 'suppressed', 'expired', 'failed', 'error'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </Field>
        <button type="submit">Search</button>
        <button type="button" className="secondary" onClick={first.reload}>
          Refresh
        </button>
        <button type="button" className="secondary" disabled={rows.length === 0} onClick={exportCsv}>
          Export CSV
        </button>
      </form>
      <ErrorBox error={first.error ?? error} />
      {byCampaign.size > 0 && (
        <p className="summary" title="Counts per campaign, cell and status">
          {[...byCampaign].map(([k, v]) => (
            <span key={k} className="tag">
              {k}: {v}
            </span>
          ))}
        </p>
      )}
      {rows.length === 0 && !first.error && <p className="muted">No activations match.</p>}
      {rows.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Output time</th>
              <th scope="col">Campaign</th>
              <th scope="col">Cell</th>
              <th scope="col">Customer</th>
              <th scope="col">Status</th>
              <th scope="col">Content</th>
              <th scope="col">Deliveries</th>
              <th scope="col">Source</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((a) => (
              <tr key={a.id}>
                <td>{fmtTime(a.outputTime)}</td>
                <td>
                  {a.campaign} v{a.campaignVersion}
                </td>
                <td>{a.cell}</td>
                <td>
                  <a href={`/lookup?key=${enc(a.customerKey)}`}>{a.customerKey}</a>
                </td>
                <td>
                  <span className={`status ${a.status}`}>{a.status}</span>
                  {a.reason && <div className="muted">{a.reason}</div>}
                </td>
                <td>
                  <code>{JSON.stringify(a.content)}</code>
                </td>
                <td>
                  {Object.entries(a.deliveries).map(([ch, d]) => (
                    <div key={ch}>
                      {ch}: {d.status}
                    </div>
                  ))}
                </td>
                <td>
                  {a.source.kind === 'stream'
                    ? `${a.source.topic}/${a.source.partition}@${a.source.offset}`
                    : `run ${a.source.runId}`}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && (
        <button type="button" className="secondary" onClick={more}>
          Load more
        </button>
      )}
    </section>
  )
}
