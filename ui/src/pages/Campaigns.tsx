import { createContext, useContext, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react'
import {
  ApiError,
  api,
  type CollectionDef,
  type ColumnInfo,
  enc,
  type Issue,
  type StreamDef,
  type TableInfo,
  type Versioned,
} from '../api'
import { ErrorBox, Field, FieldTags, fmtTime, Json, useAsync } from '../components'
import { diffLines } from '../diff'
import { Link, navigate } from '../router'
import { type RunRecord, RunsTable, runNow, useRuns } from '../runs'

type Content = string | { template: string }
type Output =
  | { kafka: { topic: string; key?: string } }
  | { pull: { collection: string; key: string; set?: Record<string, string> } }
  | { webhook: { url: string; timeout?: string } }

export interface CampaignDef {
  name: string
  description?: string
  status?: string
  trigger: { stream: string } | { schedule: string; timezone?: string } | { manual: true }
  audience?: { sql?: string; table?: string; where?: string; key?: string }
  enrich?: Array<{ collection: string; key: string; as: string }>
  where?: string
  cells?: { holdout?: number; variants?: Array<{ name: string; weight: number }> }
  content?: Record<string, Content>
  outputs?: Output[]
  [k: string]: unknown
}

/** The validation issues of the draft, by path without the `campaigns[0].` prefix. */
const IssuesContext = createContext<(path: string) => Issue[]>(() => [])

export const issuePath = (i: Issue) => i.path.replace(/^campaigns\[0\]\.?/, '')

export function CampaignsPage(props: { path: string }) {
  const name = decodeURIComponent(props.path.slice('/campaigns/'.length))
  if (props.path.startsWith('/campaigns/') && name)
    return <Designer key={name} name={name === 'new' ? null : name} />
  return <CampaignList />
}

function CampaignList() {
  const list = useAsync(() => api<{ items: Versioned<CampaignDef>[] }>('/api/v1/campaigns'), [])
  const items = (list.data?.items ?? []).filter((c) => c.definition)
  const [runError, setRunError] = useState<unknown>(null)
  return (
    <section>
      <div className="row between">
        <h1>Campaigns</h1>
        <button type="button" onClick={() => navigate('/campaigns/new')}>
          New campaign
        </button>
      </div>
      <ErrorBox error={list.error ?? runError} />
      {items.length === 0 && !list.error && <p className="muted">No campaigns yet.</p>}
      {items.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Trigger</th>
              <th scope="col">Version</th>
              <th scope="col">Updated</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((c) => {
              const d = c.definition!
              return (
                <tr key={c.name}>
                  <td>
                    <Link to={`/campaigns/${enc(c.name)}`}>{c.name}</Link>
                  </td>
                  <td>
                    <span className={`status ${d.status}`}>{d.status ?? 'draft'}</span>
                  </td>
                  <td>{triggerText(d)}</td>
                  <td>{c.version}</td>
                  <td>{fmtTime(c.updatedAt)}</td>
                  <td>
                    {!('stream' in d.trigger) && d.status !== 'archived' && (
                      <button
                        type="button"
                        className="secondary"
                        aria-label={`Run ${c.name} now`}
                        onClick={() =>
                          runNow(c.name).then(
                            (r) => navigate(`/history/runs/${enc(r.id)}`),
                            (e) => setRunError(e),
                          )
                        }
                      >
                        Run now
                      </button>
                    )}
                  </td>
                </tr>
              )
            })}
          </tbody>
        </table>
      )}
    </section>
  )
}

function triggerText(d: CampaignDef): string {
  const t = d.trigger as any
  if (t.stream) return `stream ${t.stream}`
  if (t.schedule) return `schedule ${t.schedule} ${t.timezone ?? 'UTC'}`
  return 'manual'
}

/** Drops empty parts so that the draft validates like a hand-written definition. */
function clean(d: CampaignDef): CampaignDef {
  const c: CampaignDef = JSON.parse(JSON.stringify(d))
  if (!c.description) delete c.description
  if (!c.where?.trim()) delete c.where
  if (!c.enrich?.length) delete c.enrich
  if (!c.content || Object.keys(c.content).length === 0) delete c.content
  if (!c.outputs?.length) delete c.outputs
  if (c.cells && !c.cells.holdout && !c.cells.variants?.length) delete c.cells
  if (c.cells && !c.cells.variants?.length) delete c.cells.variants
  if (c.audience) {
    for (const k of ['sql', 'table', 'where', 'key'] as const) if (!c.audience[k]) delete c.audience[k]
    if (Object.keys(c.audience).length === 0) delete c.audience
  }
  for (const o of c.outputs ?? []) {
    if ('kafka' in o && !o.kafka.key) delete o.kafka.key
    if ('pull' in o && o.pull.set && Object.keys(o.pull.set).length === 0) delete o.pull.set
    if ('webhook' in o && !o.webhook.timeout) delete o.webhook.timeout
  }
  return c
}

const EMPTY: CampaignDef = {
  name: '',
  status: 'draft',
  trigger: { stream: '' },
  enrich: [],
  content: {},
  outputs: [],
}

function Designer(props: { name: string | null }) {
  const streams = useAsync(() => api<{ items: Versioned<StreamDef>[] }>('/api/v1/streams'), [])
  const cols = useAsync(() => api<{ items: Versioned<CollectionDef>[] }>('/api/v1/collections'), [])
  const tables = useAsync(() => api<{ items: TableInfo[] }>('/api/v1/datastore/tables'), [])
  // the data store settings name the default key column (customer_id unless set)
  const datastore = useAsync(() => api<{ definition: { key?: string } | null }>('/api/v1/datastore'), [])
  const [draft, setDraft] = useState<CampaignDef | null>(props.name ? null : EMPTY)
  const [saved, setSaved] = useState<Versioned<CampaignDef> | null>(null)
  const [issues, setIssues] = useState<Issue[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [note, setNote] = useState('')
  const [busy, setBusy] = useState('')
  const [versionsKey, setVersionsKey] = useState(0)

  useEffect(() => {
    if (!props.name) return
    api<Versioned<CampaignDef>>(`/api/v1/campaigns/${enc(props.name)}`).then((c) => {
      setSaved(c)
      setDraft(c.definition)
    }, setError)
  }, [props.name])

  // Validate as you type: the server compiles every CEL expression and Liquid template.
  const json = draft ? JSON.stringify(clean(draft)) : ''
  useEffect(() => {
    if (!json) return
    const t = setTimeout(() => {
      api<{ valid: boolean; issues: Issue[] }>('/api/v1/definitions/validate', {
        body: { campaigns: [JSON.parse(json)] },
      }).then(
        (r) => setIssues(r.issues),
        (e) => setIssues([{ path: '', message: e instanceof Error ? e.message : String(e) }]),
      )
    }, 350)
    return () => clearTimeout(t)
  }, [json])

  const streamList = (streams.data?.items ?? []).map((s) => s.definition!).filter(Boolean)
  const colList = (cols.data?.items ?? []).map((c) => c.definition!).filter(Boolean)
  const stream =
    draft && 'stream' in draft.trigger
      ? streamList.find((s) => s.name === (draft.trigger as any).stream)
      : undefined
  const tableList = tables.data?.items ?? []
  const rowColumns = draft && !('stream' in draft.trigger) ? audienceColumns(draft.audience, tableList) : []
  const picks = useMemo(() => {
    const out: string[] = []
    for (const f of stream?.fields ?? []) out.push(`event.${f.name}`)
    for (const c of rowColumns) out.push(`row.${c.name}`)
    for (const e of draft?.enrich ?? []) {
      const c = colList.find((x) => x.name === e.collection)
      if (!e.as) continue
      out.push(e.as)
      for (const f of c?.fields ?? []) out.push(`${e.as}.${f.name}`)
    }
    if (draft && !('stream' in draft.trigger)) out.push('row')
    out.push('cell', 'key')
    return out
  }, [stream, draft, colList, rowColumns])

  if (!draft) return <ErrorBox error={error} />
  const set = (patch: Partial<CampaignDef>) => setDraft((d) => ({ ...d!, ...patch }))
  // Issues with a span are shown, and marked, at their expression; the step lists the others.
  const issuesAt = (prefix: string) =>
    (issues ?? []).filter((i) => {
      if (i.span) return false
      const p = issuePath(i)
      return p === prefix || p.startsWith(`${prefix}.`) || p.startsWith(`${prefix}[`)
    })
  const issuesFor = (path: string) => (issues ?? []).filter((i) => issuePath(i) === path)
  const isNew = !saved
  const status = saved?.definition?.status ?? 'draft'

  const run = async (what: string, fn: () => Promise<void>) => {
    setBusy(what)
    setError(null)
    setNote('')
    try {
      await fn()
    } catch (e) {
      setError(e)
    } finally {
      setBusy('')
    }
  }
  const save = () =>
    run('save', async () => {
      const body = clean(draft)
      const r = isNew
        ? await api<Versioned<CampaignDef>>('/api/v1/campaigns', { body: { ...body, status: 'draft' } })
        : await api<Versioned<CampaignDef>>(`/api/v1/campaigns/${enc(draft.name)}`, { method: 'PUT', body })
      setSaved(r)
      setVersionsKey((n) => n + 1)
      setNote(`Saved version ${r.version}.`)
      if (isNew) history.replaceState(null, '', `/campaigns/${enc(draft.name)}`)
    })
  const lifecycle = (action: 'activate' | 'pause') =>
    run(action, async () => {
      const r = await api<Versioned<CampaignDef>>(`/api/v1/campaigns/${enc(draft.name)}/${action}`, {
        body: {},
      })
      const fresh = r?.definition
        ? r
        : await api<Versioned<CampaignDef>>(`/api/v1/campaigns/${enc(draft.name)}`)
      setSaved(fresh)
      setDraft(fresh.definition)
      setVersionsKey((n) => n + 1)
      setNote(action === 'activate' ? 'The campaign is active.' : 'The campaign is paused.')
    })

  const triggerKind =
    'stream' in draft.trigger ? 'stream' : 'schedule' in draft.trigger ? 'schedule' : 'manual'
  const stepIssues = (p: string) => <Issues issues={issuesAt(p)} />

  return (
    <section className="designer">
      <p>
        <Link to="/campaigns">← Campaigns</Link>
      </p>
      <div className="row between">
        <h1>{isNew ? 'New campaign' : `Campaign ${draft.name}`}</h1>
        <span className={`status ${status}`} title="Status">
          {status}
          {saved ? ` · v${saved.version}` : ''}
        </span>
      </div>
      <div className="grid2">
        <Field label="Name" id="c-name">
          <input
            id="c-name"
            value={draft.name}
            disabled={!isNew}
            onChange={(e) => set({ name: e.target.value })}
          />
        </Field>
        <Field label="Description" id="c-desc">
          <input
            id="c-desc"
            value={draft.description ?? ''}
            onChange={(e) => set({ description: e.target.value })}
          />
        </Field>
      </div>
      {stepIssues('name')}

      <IssuesContext.Provider value={issuesFor}>
        <ol className="flow" aria-label="Campaign flow">
          <li className="step">
            <h2>1. Trigger</h2>
            <Field label="Trigger kind" id="c-trigger-kind">
              <select
                id="c-trigger-kind"
                value={triggerKind}
                onChange={(e) =>
                  set({
                    trigger:
                      e.target.value === 'stream'
                        ? { stream: streamList[0]?.name ?? '' }
                        : e.target.value === 'schedule'
                          ? { schedule: '0 2 * * *', timezone: 'UTC' }
                          : { manual: true },
                    audience:
                      e.target.value === 'stream'
                        ? undefined
                        : (draft.audience ??
                          (tableList[0]
                            ? { table: tableList[0].name }
                            : { sql: 'select customer_id from customers' })),
                  })
                }
              >
                <option value="stream">A stream's events (real time)</option>
                <option value="schedule">A schedule over the data store</option>
                <option value="manual">Manual run over the data store</option>
              </select>
            </Field>
            {triggerKind === 'stream' && (
              <Field label="Stream" id="c-stream">
                <select
                  id="c-stream"
                  value={(draft.trigger as any).stream}
                  onChange={(e) => set({ trigger: { stream: e.target.value } })}
                >
                  <option value="">— choose a stream —</option>
                  {streamList.map((s) => (
                    <option key={s.name} value={s.name}>
                      {s.name} ({s.topic})
                    </option>
                  ))}
                </select>
              </Field>
            )}
            {stream && <FieldTags prefix="event" fields={stream.fields} />}
            {triggerKind === 'schedule' && (
              <div className="grid2">
                <Field label="Cron schedule" id="c-cron">
                  <input
                    id="c-cron"
                    value={(draft.trigger as any).schedule}
                    onChange={(e) =>
                      set({ trigger: { ...(draft.trigger as any), schedule: e.target.value } })
                    }
                  />
                </Field>
                <Field label="Time zone" id="c-tz">
                  <input
                    id="c-tz"
                    value={(draft.trigger as any).timezone ?? ''}
                    onChange={(e) =>
                      set({ trigger: { ...(draft.trigger as any), timezone: e.target.value } })
                    }
                  />
                </Field>
              </div>
            )}
            {triggerKind !== 'stream' && (
              <AudienceEditor
                audience={draft.audience ?? {}}
                tables={tableList}
                tablesError={tables.error}
                defaultKey={datastore.data?.definition?.key ?? 'customer_id'}
                columns={rowColumns}
                picks={picks}
                onChange={(audience) => set({ audience })}
              />
            )}
            {stepIssues('trigger')}
            {stepIssues('audience')}
          </li>

          <li className="step">
            <h2>2. Enrichment</h2>
            {(draft.enrich ?? []).map((e, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: edited in place
              <div className="row" key={i}>
                <Field label="Collection" id={`c-enrich-${i}-col`}>
                  <select
                    id={`c-enrich-${i}-col`}
                    value={e.collection}
                    onChange={(ev) =>
                      set({
                        enrich: draft.enrich!.map((x, j) =>
                          j === i ? { ...x, collection: ev.target.value } : x,
                        ),
                      })
                    }
                  >
                    <option value="">— choose —</option>
                    {colList.map((c) => (
                      <option key={c.name}>{c.name}</option>
                    ))}
                  </select>
                </Field>
                <Expr
                  label="Look up by key"
                  id={`c-enrich-${i}-key`}
                  path={`enrich[${i}].key`}
                  value={e.key}
                  picks={picks}
                  onChange={(v) =>
                    set({ enrich: draft.enrich!.map((x, j) => (j === i ? { ...x, key: v } : x)) })
                  }
                />
                <Field label="As" id={`c-enrich-${i}-as`}>
                  <input
                    id={`c-enrich-${i}-as`}
                    value={e.as}
                    onChange={(ev) =>
                      set({
                        enrich: draft.enrich!.map((x, j) => (j === i ? { ...x, as: ev.target.value } : x)),
                      })
                    }
                  />
                </Field>
                <button
                  type="button"
                  className="secondary"
                  onClick={() => set({ enrich: draft.enrich!.filter((_, j) => j !== i) })}
                >
                  Remove lookup
                </button>
              </div>
            ))}
            <button
              type="button"
              className="secondary"
              onClick={() =>
                set({
                  enrich: [
                    ...(draft.enrich ?? []),
                    {
                      collection: colList[0]?.name ?? '',
                      key: stream ? `event.${stream.key}` : `row.${draft.audience?.key || 'customer_id'}`,
                      as: colList[0]?.name ?? 'profile',
                    },
                  ],
                })
              }
            >
              Add lookup
            </button>
            {stepIssues('enrich')}
          </li>

          <li className="step">
            <h2>3. Audience: where</h2>
            <Expr
              label={
                triggerKind === 'stream'
                  ? 'Condition (CEL), empty for every event'
                  : 'Condition (CEL), empty for every row'
              }
              id="c-where"
              path="where"
              value={draft.where ?? ''}
              picks={picks}
              onChange={(v) => set({ where: v })}
              rows={2}
            />
            {stepIssues('where')}
          </li>

          <li className="step">
            <h2>4. Cells</h2>
            <Field label="Holdout percent (control group)" id="c-holdout">
              <input
                id="c-holdout"
                type="number"
                min={0}
                max={100}
                value={draft.cells?.holdout ?? 0}
                onChange={(e) => set({ cells: { ...draft.cells, holdout: Number(e.target.value) } })}
              />
            </Field>
            {(draft.cells?.variants ?? []).map((v, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: edited in place
              <div className="row" key={i}>
                <Field label="Variant name" id={`c-var-${i}-name`}>
                  <input
                    id={`c-var-${i}-name`}
                    value={v.name}
                    onChange={(e) =>
                      set({
                        cells: {
                          ...draft.cells,
                          variants: draft.cells!.variants!.map((x, j) =>
                            j === i ? { ...x, name: e.target.value } : x,
                          ),
                        },
                      })
                    }
                  />
                </Field>
                <Field label="Weight" id={`c-var-${i}-weight`}>
                  <input
                    id={`c-var-${i}-weight`}
                    type="number"
                    min={0}
                    value={v.weight}
                    onChange={(e) =>
                      set({
                        cells: {
                          ...draft.cells,
                          variants: draft.cells!.variants!.map((x, j) =>
                            j === i ? { ...x, weight: Number(e.target.value) } : x,
                          ),
                        },
                      })
                    }
                  />
                </Field>
                <button
                  type="button"
                  className="secondary"
                  onClick={() =>
                    set({
                      cells: { ...draft.cells, variants: draft.cells!.variants!.filter((_, j) => j !== i) },
                    })
                  }
                >
                  Remove variant
                </button>
              </div>
            ))}
            <button
              type="button"
              className="secondary"
              onClick={() =>
                set({
                  cells: {
                    ...draft.cells,
                    variants: [
                      ...(draft.cells?.variants ?? []),
                      { name: `v${(draft.cells?.variants?.length ?? 0) + 1}`, weight: 1 },
                    ],
                  },
                })
              }
            >
              Add A/B variant
            </button>
            {stepIssues('cells')}
          </li>

          <li className="step">
            <h2>5. Content</h2>
            {Object.entries(draft.content ?? {}).map(([k, v], i) => {
              const liquid = typeof v !== 'string'
              const text = typeof v === 'string' ? v : v.template
              const rename = (nk: string) =>
                set({
                  content: Object.fromEntries(
                    Object.entries(draft.content!).map(([a, b]) => (a === k ? [nk, b] : [a, b])),
                  ),
                })
              const put = (nv: Content) => set({ content: { ...draft.content, [k]: nv } })
              return (
                // biome-ignore lint/suspicious/noArrayIndexKey: keys are renamed in place
                <div className="content-row" key={i}>
                  <div className="row">
                    <Field label="Content field" id={`c-content-${i}-name`}>
                      <input id={`c-content-${i}-name`} value={k} onChange={(e) => rename(e.target.value)} />
                    </Field>
                    <Field label="Kind" id={`c-content-${i}-kind`}>
                      <select
                        id={`c-content-${i}-kind`}
                        value={liquid ? 'liquid' : 'cel'}
                        onChange={(e) => put(e.target.value === 'liquid' ? { template: text } : text || '""')}
                      >
                        <option value="cel">CEL expression</option>
                        <option value="liquid">Liquid template</option>
                      </select>
                    </Field>
                    <button
                      type="button"
                      className="secondary"
                      onClick={() =>
                        set({
                          content: Object.fromEntries(
                            Object.entries(draft.content!).filter(([a]) => a !== k),
                          ),
                        })
                      }
                    >
                      Remove content
                    </button>
                  </div>
                  <Expr
                    label={liquid ? `Template for ${k}` : `Expression for ${k}`}
                    id={`c-content-${i}-value`}
                    path={liquid ? `content.${k}.template` : `content.${k}`}
                    value={text}
                    picks={picks}
                    liquid={liquid}
                    onChange={(nv) => put(liquid ? { template: nv } : nv)}
                  />
                  <Issues issues={issuesAt(`content.${k}`)} />
                </div>
              )
            })}
            <button
              type="button"
              className="secondary"
              onClick={() => {
                let n = 1
                while (draft.content?.[`field${n}`] !== undefined) n++
                set({ content: { ...draft.content, [`field${n}`]: '""' } })
              }}
            >
              Add content field
            </button>
          </li>

          <li className="step">
            <h2>6. Outputs</h2>
            {(draft.outputs ?? []).map((o, i) => (
              <OutputEditor
                // biome-ignore lint/suspicious/noArrayIndexKey: edited in place
                key={i}
                i={i}
                output={o}
                picks={picks}
                collections={colList}
                onChange={(no) =>
                  set({
                    outputs: no
                      ? draft.outputs!.map((x, j) => (j === i ? no : x))
                      : draft.outputs!.filter((_, j) => j !== i),
                  })
                }
              />
            ))}
            <div className="row">
              <button
                type="button"
                className="secondary"
                onClick={() => set({ outputs: [...(draft.outputs ?? []), { kafka: { topic: '' } }] })}
              >
                Add Kafka output
              </button>
              <button
                type="button"
                className="secondary"
                onClick={() =>
                  set({
                    outputs: [
                      ...(draft.outputs ?? []),
                      { pull: { collection: colList[0]?.name ?? '', key: 'key', set: {} } },
                    ],
                  })
                }
              >
                Add Pull output
              </button>
              <button
                type="button"
                className="secondary"
                onClick={() => set({ outputs: [...(draft.outputs ?? []), { webhook: { url: 'https://' } }] })}
              >
                Add webhook output
              </button>
            </div>
            {stepIssues('outputs')}
          </li>
        </ol>
      </IssuesContext.Provider>

      <div className="validation" aria-live="polite">
        {issues === null ? (
          <span className="muted">Checking…</span>
        ) : issues.length === 0 ? (
          <span className="ok">✓ The campaign is valid.</span>
        ) : (
          <span className="error">
            {issues.length} problem{issues.length === 1 ? '' : 's'} to fix
          </span>
        )}
        <Issues
          issues={(issues ?? []).filter(
            (i) =>
              !/^campaigns\[0\]\.(name|trigger|audience|enrich|where|cells|content|outputs)/.test(i.path),
          )}
        />
      </div>
      {note && <output className="note">{note}</output>}
      <ErrorBox error={error} />
      <div className="row actions">
        <button type="button" onClick={save} disabled={!!busy || !draft.name}>
          {busy === 'save' ? 'Saving…' : 'Save'}
        </button>
        <button
          type="button"
          onClick={() => lifecycle('activate')}
          disabled={!!busy || isNew || status === 'active'}
        >
          Activate
        </button>
        <button
          type="button"
          className="secondary"
          onClick={() => lifecycle('pause')}
          disabled={!!busy || isNew || status !== 'active'}
        >
          Pause
        </button>
      </div>

      {!isNew && triggerKind !== 'stream' && <CampaignRuns name={draft.name} />}
      {!isNew && <DryRun name={draft.name} stream={stream?.name} row={triggerKind !== 'stream'} />}
      {!isNew && <Versions key={versionsKey} name={draft.name} />}
    </section>
  )
}

/**
 * The columns `row` has: those of the audience table, or, for SQL, of the tables the query names
 * (the query may select fewer or compute others; the server checks expressions over `row` loosely).
 */
function audienceColumns(a: CampaignDef['audience'], tables: TableInfo[]): ColumnInfo[] {
  if (!a) return []
  const named = a.table
    ? tables.filter((t) => t.name === a.table)
    : tables.filter((t) =>
        new RegExp(`(^|[^A-Za-z0-9_.])${t.name.replace(/[.]/g, '\\.')}($|[^A-Za-z0-9_])`, 'i').test(
          a.sql ?? '',
        ),
      )
  const seen = new Map<string, ColumnInfo>()
  for (const t of named) for (const c of t.columns) if (!seen.has(c.name)) seen.set(c.name, c)
  return [...seen.values()]
}

type Audience = NonNullable<CampaignDef['audience']>

/** The audience of a scheduled or manual campaign: a data store table (with a filter) or SQL. */
function AudienceEditor(props: {
  audience: Audience
  tables: TableInfo[]
  tablesError: unknown
  /** The key column when the audience names none: the data store settings' `key`. */
  defaultKey: string
  columns: ColumnInfo[]
  picks: string[]
  onChange: (a: Audience) => void
}) {
  const a = props.audience
  const kind = a.sql !== undefined ? 'sql' : 'table'
  const keyOptions = props.columns.filter((c) => c.kind === 'string' || c.kind === 'integer')
  return (
    <div className="audience">
      <div className="row">
        <Field label="Audience from" id="c-audience-kind">
          <select
            id="c-audience-kind"
            value={kind}
            onChange={(e) =>
              props.onChange(
                e.target.value === 'sql'
                  ? {
                      sql: `select * from ${a.table || props.tables[0]?.name || 'customers'}`,
                      key: a.key,
                    }
                  : { table: props.tables[0]?.name ?? '', key: a.key },
              )
            }
          >
            <option value="table">A data store table</option>
            <option value="sql">An SQL query over the data store</option>
          </select>
        </Field>
        {kind === 'table' && (
          <Field label="Table" id="c-audience-table">
            <select
              id="c-audience-table"
              value={a.table ?? ''}
              onChange={(e) => props.onChange({ ...a, table: e.target.value })}
            >
              <option value="">— choose a table —</option>
              {props.tables.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.name} ({t.columns.length} columns)
                </option>
              ))}
            </select>
          </Field>
        )}
        <Field label="Customer key column" id="c-audience-key">
          <select
            id="c-audience-key"
            value={a.key ?? ''}
            onChange={(e) => props.onChange({ ...a, key: e.target.value || undefined })}
          >
            <option value="">default ({props.defaultKey})</option>
            {keyOptions.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name}
              </option>
            ))}
          </select>
        </Field>
      </div>
      {kind === 'sql' ? (
        <Field label="Audience SQL over the data store" id="c-sql">
          <textarea
            id="c-sql"
            rows={3}
            spellCheck={false}
            value={a.sql ?? ''}
            onChange={(e) => props.onChange({ ...a, sql: e.target.value })}
          />
        </Field>
      ) : (
        <Expr
          label="Rows where (CEL over row), empty for every row"
          id="c-audience-where"
          path="audience.where"
          value={a.where ?? ''}
          picks={props.picks.filter((p) => p.startsWith('row'))}
          onChange={(v) => props.onChange({ ...a, where: v })}
        />
      )}
      <ErrorBox error={props.tablesError} />
      {props.tables.length === 0 && !props.tablesError && (
        <p className="muted">
          The data store has no tables yet: load one with <code>riffle datastore load TABLE FILE</code>.
        </p>
      )}
      {props.columns.length > 0 && (
        <FieldTags prefix="row" fields={props.columns.map((c) => ({ name: c.name, type: c.kind }))} />
      )}
    </div>
  )
}

/** Runs of a scheduled or manual campaign, with a button that starts one now. */
function CampaignRuns(props: { name: string }) {
  const { runs, error, add } = useRuns({ campaign: props.name, limit: 5 })
  const [started, setStarted] = useState<RunRecord | null>(null)
  const [runError, setRunError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const going = (runs ?? []).some((r) => r.status === 'running')
  const start = async () => {
    setBusy(true)
    setRunError(null)
    try {
      const r = await runNow(props.name)
      setStarted(r)
      add(r)
    } catch (e) {
      setRunError(e)
    } finally {
      setBusy(false)
    }
  }
  return (
    <section className="panel" aria-labelledby="campaign-runs">
      <div className="row between">
        <h2 id="campaign-runs">Runs</h2>
        <button type="button" onClick={start} disabled={busy || going}>
          {busy ? 'Starting…' : going ? 'Running…' : 'Run now'}
        </button>
      </div>
      <p className="muted">
        A run reads the audience from the data store and acts on every row with the saved version of the
        campaign.
      </p>
      {started && (
        <output className="note">
          Started run <Link to={`/history/runs/${enc(started.id)}`}>{started.id}</Link>.
        </output>
      )}
      <ErrorBox error={runError ?? error} />
      {runs && <RunsTable runs={runs} caption={`Runs of ${props.name}`} showCampaign={false} />}
      <p>
        <Link to="/history">Every run</Link>
      </p>
    </section>
  )
}

function Issues(props: { issues: Issue[] }) {
  if (props.issues.length === 0) return null
  return (
    <div role="alert">
      <ul className="issues">
        {props.issues.map((i, n) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: issues have no identity
          <li key={n}>
            <code>{issuePath(i) || 'campaign'}</code>
            {i.line !== undefined && (
              <span className="pos">
                {' '}
                (line {i.line}
                {i.column !== undefined ? `, column ${i.column}` : ''})
              </span>
            )}
            : {i.message}
          </li>
        ))}
      </ul>
    </div>
  )
}

/** An expression or template input with a field picker that inserts at the cursor. */
function Expr(props: {
  label: string
  id: string
  /** Where the value sits in the campaign (`where`, `content.code`…): its issues are shown here. */
  path: string
  value: string
  picks: string[]
  onChange: (v: string) => void
  rows?: number
  liquid?: boolean
}) {
  const ref = useRef<HTMLTextAreaElement>(null)
  const marks = useRef<HTMLDivElement>(null)
  /** Where the cursor goes once an inserted field is in the text. */
  const caret = useRef<number | null>(null)
  const issues = useContext(IssuesContext)(props.path)
  const errorId = `${props.id}-error`
  // The span was found in the text the server checked; mark it only while it still fits the text.
  const marked = issues.find((i) => i.span && i.span.end <= props.value.length)?.span
  const insert = (token: string) => {
    if (!token) return
    const text = props.liquid ? `{{ ${token} }}` : token
    const el = ref.current
    const at = el?.selectionStart ?? props.value.length
    const end = el?.selectionEnd ?? at
    props.onChange(props.value.slice(0, at) + text + props.value.slice(end))
    caret.current = at + text.length
  }
  // The cursor goes after the inserted field as the new value is committed, before the next key is
  // handled (a requestAnimationFrame could run after the user typed on, and move their text).
  useLayoutEffect(() => {
    if (caret.current === null) return
    const at = caret.current
    caret.current = null
    ref.current?.focus()
    ref.current?.setSelectionRange(at, at)
  })
  return (
    <div className="field expr">
      <label htmlFor={props.id}>{props.label}</label>
      <div className="row">
        <div className="expr-box">
          <textarea
            ref={ref}
            id={props.id}
            rows={props.rows ?? 1}
            spellCheck={false}
            value={props.value}
            aria-invalid={issues.length > 0 ? true : undefined}
            aria-describedby={issues.length > 0 ? errorId : undefined}
            onChange={(e) => props.onChange(e.target.value)}
            onScroll={(e) => {
              if (marks.current) marks.current.scrollTop = e.currentTarget.scrollTop
            }}
          />
          {marked && (
            // A copy of the text, laid over the textarea, that underlines the part at fault.
            <div ref={marks} className="expr-marks" aria-hidden="true">
              {props.value.slice(0, marked.start)}
              <mark data-start={marked.start} data-end={marked.end}>
                {marked.end > marked.start ? props.value.slice(marked.start, marked.end) : '\u00a0'}
              </mark>
              {props.value.slice(marked.end)}
            </div>
          )}
        </div>
        <select
          aria-label={`Insert a field into ${props.label}`}
          value=""
          onChange={(e) => insert(e.target.value)}
        >
          <option value="">Insert field…</option>
          {props.picks.map((p) => (
            <option key={p}>{p}</option>
          ))}
        </select>
      </div>
      {issues.length > 0 && (
        <ul id={errorId} className="expr-errors">
          {issues.map((i, n) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: issues have no identity
            <li key={n}>
              {i.span ? `Line ${i.span.line}, column ${i.span.column}: ` : ''}
              {i.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}

function OutputEditor(props: {
  i: number
  output: Output
  picks: string[]
  collections: CollectionDef[]
  onChange: (o: Output | null) => void
}) {
  const { i, output: o } = props
  const id = (s: string) => `c-out-${i}-${s}`
  return (
    <fieldset className="output">
      <legend>{'kafka' in o ? 'Kafka' : 'pull' in o ? 'Pull Marketing' : 'Webhook'} output</legend>
      {'kafka' in o && (
        <div className="row">
          <Field label="Topic" id={id('topic')}>
            <input
              id={id('topic')}
              value={o.kafka.topic}
              onChange={(e) => props.onChange({ kafka: { ...o.kafka, topic: e.target.value } })}
            />
          </Field>
          <Expr
            label="Message key (optional)"
            id={id('key')}
            path={`outputs[${i}].kafka.key`}
            value={o.kafka.key ?? ''}
            picks={props.picks}
            onChange={(v) => props.onChange({ kafka: { ...o.kafka, key: v } })}
          />
        </div>
      )}
      {'pull' in o && (
        <>
          <div className="row">
            <Field label="Collection" id={id('collection')}>
              <select
                id={id('collection')}
                value={o.pull.collection}
                onChange={(e) => props.onChange({ pull: { ...o.pull, collection: e.target.value } })}
              >
                <option value="">— choose —</option>
                {props.collections.map((c) => (
                  <option key={c.name}>{c.name}</option>
                ))}
              </select>
            </Field>
            <Expr
              label="Record key"
              id={id('key')}
              path={`outputs[${i}].pull.key`}
              value={o.pull.key}
              picks={props.picks}
              onChange={(v) => props.onChange({ pull: { ...o.pull, key: v } })}
            />
          </div>
          {(props.collections.find((c) => c.name === o.pull.collection)?.fields ?? []).map((f) => (
            <Expr
              key={f.name}
              label={`Set ${f.name} (optional)`}
              id={id(`set-${f.name}`)}
              path={`outputs[${i}].pull.set.${f.name}`}
              value={o.pull.set?.[f.name] ?? ''}
              picks={[...props.picks, 'content']}
              onChange={(v) => {
                const set = { ...o.pull.set }
                if (v) set[f.name] = v
                else delete set[f.name]
                props.onChange({ pull: { ...o.pull, set } })
              }}
            />
          ))}
        </>
      )}
      {'webhook' in o && (
        <div className="row">
          <Field label="URL" id={id('url')}>
            <input
              id={id('url')}
              value={o.webhook.url}
              onChange={(e) => props.onChange({ webhook: { ...o.webhook, url: e.target.value } })}
            />
          </Field>
          <Field label="Timeout" id={id('timeout')}>
            <input
              id={id('timeout')}
              value={o.webhook.timeout ?? ''}
              placeholder="2s"
              onChange={(e) => props.onChange({ webhook: { ...o.webhook, timeout: e.target.value } })}
            />
          </Field>
        </div>
      )}
      <button type="button" className="secondary" onClick={() => props.onChange(null)}>
        Remove output
      </button>
    </fieldset>
  )
}

function DryRun(props: { name: string; stream?: string; row?: boolean }) {
  const what = props.row ? 'row' : 'event'
  const [event, setEvent] = useState('{\n  \n}')
  const [result, setResult] = useState<unknown>(null)
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const fromSample = async () => {
    setError(null)
    try {
      const r = await api<{ messages: Array<{ json?: unknown; value: string | null }> }>(
        `/api/v1/streams/${enc(props.stream!)}/sample?limit=1`,
      )
      const m = r.messages[r.messages.length - 1]
      if (!m) setError('The topic has no messages yet.')
      else setEvent(JSON.stringify(m.json ?? JSON.parse(m.value ?? 'null'), null, 2))
    } catch (e) {
      setError(e)
    }
  }
  const run = async () => {
    setBusy(true)
    setError(null)
    setResult(null)
    try {
      let parsed: unknown
      try {
        parsed = JSON.parse(event)
      } catch (e) {
        throw new Error(`The ${what} is not valid JSON: ${(e as Error).message}`)
      }
      setResult(await api(`/api/v1/campaigns/${enc(props.name)}/dry-run`, { body: { [what]: parsed } }))
    } catch (e) {
      setError(
        e instanceof ApiError && e.status === 404 && e.message.startsWith('no route')
          ? 'Dry run is not available on this server yet.'
          : e,
      )
    } finally {
      setBusy(false)
    }
  }
  return (
    <section className="panel">
      <h2>Dry run</h2>
      <Field label={props.row ? 'Row (JSON)' : 'Event (JSON)'} id="dry-event">
        <textarea
          id="dry-event"
          rows={6}
          spellCheck={false}
          value={event}
          onChange={(e) => setEvent(e.target.value)}
        />
      </Field>
      <div className="row">
        {props.stream && (
          <button type="button" className="secondary" onClick={fromSample}>
            Use the newest event of {props.stream}
          </button>
        )}
        <button type="button" onClick={run} disabled={busy}>
          {busy ? 'Running…' : 'Dry run'}
        </button>
      </div>
      <ErrorBox error={error} />
      {result !== null && <Json value={result} label="Dry run result" />}
    </section>
  )
}

function Versions(props: { name: string }) {
  const list = useAsync(
    () => api<{ items: Versioned<CampaignDef>[] }>(`/api/v1/campaigns/${enc(props.name)}/versions`),
    [props.name],
  )
  const items = [...(list.data?.items ?? [])].sort((a, b) => b.version - a.version)
  const [pair, setPair] = useState<[number, number] | null>(null)
  const [texts, setTexts] = useState<[string, string] | null>(null)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    if (!pair) return
    Promise.all(
      pair.map((v) => api<Versioned<CampaignDef>>(`/api/v1/campaigns/${enc(props.name)}/versions/${v}`)),
    ).then(
      ([a, b]) => setTexts([JSON.stringify(a!.definition, null, 2), JSON.stringify(b!.definition, null, 2)]),
      setError,
    )
  }, [pair, props.name])
  return (
    <section className="panel">
      <h2>Versions</h2>
      <ErrorBox error={list.error ?? error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Status</th>
            <th scope="col">When</th>
            <th scope="col">By</th>
            <th scope="col">
              <span className="sr-only">Diff</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {items.map((v) => (
            <tr key={v.version}>
              <td>v{v.version}</td>
              <td>{v.definition?.status ?? '—'}</td>
              <td>{fmtTime(v.updatedAt)}</td>
              <td>{v.updatedBy}</td>
              <td>
                {v.version > 1 && (
                  <button
                    type="button"
                    className="secondary"
                    onClick={() => setPair([v.version - 1, v.version])}
                  >
                    Diff with v{v.version - 1}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {pair && texts && (
        <div>
          <h3>
            v{pair[0]} → v{pair[1]}
          </h3>
          {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must take focus */}
          <pre className="diff" title={`Differences between version ${pair[0]} and ${pair[1]}`} tabIndex={0}>
            {diffLines(texts[0], texts[1]).map((l, n) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: lines have no identity
              <div key={n} className={l.op === '+' ? 'add' : l.op === '-' ? 'del' : ''}>
                {l.op} {l.text}
              </div>
            ))}
          </pre>
        </div>
      )}
    </section>
  )
}
