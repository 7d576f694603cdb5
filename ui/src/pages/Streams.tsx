import { useState } from 'react'
import { api, enc, type Field, type StreamDef, type Versioned } from '../api'
import { ErrorBox, Field as FormField, Json, useAsync, useInterval } from '../components'
import { rates, type Scrape, scrape, sumBy } from '../metrics'

const TYPES = ['string', 'number', 'integer', 'boolean', 'timestamp', 'object', 'array']

interface SampledMessage {
  partition: number
  offset: string
  timestamp: string
  key: string | null
  value: string | null
  json?: unknown
}

export function StreamsPage() {
  const list = useAsync(() => api<{ items: Versioned<StreamDef>[] }>('/api/v1/streams'), [])
  const [editing, setEditing] = useState<{ def: StreamDef; isNew: boolean } | null>(null)
  const [stats, setStats] = useState<{ prev?: Scrape; cur?: Scrape }>({})
  useInterval(() => {
    scrape().then(
      (cur) => setStats((s) => ({ prev: s.cur, cur })),
      () => {},
    )
  }, 2000)

  const perSec =
    stats.prev && stats.cur ? rates(stats.prev, stats.cur, 'riffle_events_in_total', ['stream']) : undefined
  const dead = stats.cur ? sumBy(stats.cur, 'riffle_dead_letters_total', ['stream', 'reason']) : undefined

  if (editing) {
    return (
      <StreamEditor
        initial={editing.def}
        isNew={editing.isNew}
        onDone={() => {
          setEditing(null)
          list.reload()
        }}
      />
    )
  }
  const items = (list.data?.items ?? []).filter((x) => x.definition)
  return (
    <section>
      <div className="row between">
        <h1>Streams</h1>
        <button
          type="button"
          onClick={() =>
            setEditing({ isNew: true, def: { name: '', topic: '', key: '', fields: [], format: 'json' } })
          }
        >
          New stream
        </button>
      </div>
      <ErrorBox error={list.error} />
      {items.length === 0 && !list.error && (
        <p className="muted">No streams yet. Define one from a Kafka topic.</p>
      )}
      {items.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Topic</th>
              <th scope="col">Key</th>
              <th scope="col">Fields</th>
              <th scope="col">Version</th>
              <th scope="col">Events/s</th>
              <th scope="col">Dead letters</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((s) => {
              const d = s.definition!
              const reasons = [...(dead ?? [])].filter(([k]) => k.startsWith(`${d.name} / `))
              return (
                <tr key={s.name}>
                  <td>{d.name}</td>
                  <td>
                    <code>{d.topic}</code>
                  </td>
                  <td>{d.key}</td>
                  <td>{d.fields.map((f) => f.name).join(', ')}</td>
                  <td>{s.version}</td>
                  <td className="num">{perSec ? (perSec.get(d.name) ?? 0).toFixed(1) : '…'}</td>
                  <td>
                    {reasons.length === 0
                      ? '0'
                      : reasons.map(([k, v]) => (
                          <div key={k}>
                            {v} {k.slice(d.name.length + 3)}
                          </div>
                        ))}
                  </td>
                  <td>
                    <button
                      type="button"
                      className="secondary"
                      onClick={() => setEditing({ def: d, isNew: false })}
                    >
                      Edit <span className="sr-only">{d.name}</span>
                    </button>
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

function StreamEditor(props: { initial: StreamDef; isNew: boolean; onDone: () => void }) {
  const [def, setDef] = useState<StreamDef>(props.initial)
  const [sample, setSample] = useState<SampledMessage[] | null>(null)
  const [busy, setBusy] = useState('')
  const [error, setError] = useState<unknown>(null)
  const [note, setNote] = useState('')
  const set = (patch: Partial<StreamDef>) => setDef((d) => ({ ...d, ...patch }))
  const setField = (i: number, patch: Partial<Field>) =>
    setDef((d) => ({ ...d, fields: d.fields.map((f, j) => (j === i ? { ...f, ...patch } : f)) }))

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
  const loadSample = () =>
    run('sample', async () => {
      const r = await api<{ messages: SampledMessage[] }>(`/api/v1/topics/${enc(def.topic)}/sample?limit=10`)
      setSample(r.messages)
      if (r.messages.length === 0) setNote('The topic has no messages yet.')
    })
  const infer = () =>
    run('infer', async () => {
      const body = sample?.length
        ? { messages: sample.map((m) => (m.json === undefined ? m.value : m.json)) }
        : { topic: def.topic }
      const r = await api<{ fields: Field[]; key?: string; time?: string; sampled: number }>(
        '/api/v1/streams/infer',
        {
          body,
        },
      )
      setDef((d) => ({ ...d, fields: r.fields, key: d.key || r.key || '', time: d.time || r.time }))
      setNote(`Inferred ${r.fields.length} fields from ${r.sampled} messages.`)
    })
  const save = () =>
    run('save', async () => {
      const body: StreamDef = { ...def }
      if (!body.time) delete body.time
      if (!body.dlq) delete body.dlq
      if (!body.description) delete body.description
      if (props.isNew) await api('/api/v1/streams', { body })
      else await api(`/api/v1/streams/${enc(def.name)}`, { method: 'PUT', body })
      props.onDone()
    })

  return (
    <section>
      <h1>{props.isNew ? 'New stream' : `Stream ${def.name}`}</h1>
      <div className="grid2">
        <div>
          <FormField label="Name" id="stream-name">
            <input
              id="stream-name"
              value={def.name}
              disabled={!props.isNew}
              onChange={(e) => set({ name: e.target.value })}
            />
          </FormField>
          <FormField label="Kafka topic" id="stream-topic">
            <input id="stream-topic" value={def.topic} onChange={(e) => set({ topic: e.target.value })} />
          </FormField>
          <div className="row">
            <button type="button" className="secondary" disabled={!def.topic || !!busy} onClick={loadSample}>
              {busy === 'sample' ? 'Sampling…' : 'Load live sample'}
            </button>
            <button type="button" className="secondary" disabled={!def.topic || !!busy} onClick={infer}>
              {busy === 'infer' ? 'Inferring…' : 'Infer fields'}
            </button>
          </div>
          <FormField label="Customer key field" id="stream-key">
            <select id="stream-key" value={def.key} onChange={(e) => set({ key: e.target.value })}>
              <option value="">— choose —</option>
              {def.fields.map((f) => (
                <option key={f.name}>{f.name}</option>
              ))}
            </select>
          </FormField>
          <FormField
            label="Event time field (optional)"
            id="stream-time"
            hint="Otherwise the Kafka timestamp."
          >
            <select
              id="stream-time"
              value={def.time ?? ''}
              onChange={(e) => set({ time: e.target.value || undefined })}
            >
              <option value="">Kafka timestamp</option>
              {def.fields
                .filter((f) => f.type === 'timestamp')
                .map((f) => (
                  <option key={f.name}>{f.name}</option>
                ))}
            </select>
          </FormField>
          <FormField label="Description" id="stream-desc">
            <input
              id="stream-desc"
              value={def.description ?? ''}
              onChange={(e) => set({ description: e.target.value })}
            />
          </FormField>
        </div>
        <div>
          <h2>Live sample</h2>
          {!sample && <p className="muted">Load a sample to see the topic's newest messages.</p>}
          {sample && (
            <ol className="sample" aria-label="Sampled messages">
              {sample.map((m) => (
                <li key={`${m.partition}-${m.offset}`}>
                  <small>
                    p{m.partition} @{m.offset} · key {m.key ?? '—'}
                  </small>
                  <Json value={m.json ?? m.value} />
                </li>
              ))}
            </ol>
          )}
        </div>
      </div>
      <h2>Fields</h2>
      <table className="fields">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Type</th>
            <th scope="col">Required</th>
            <th scope="col">Path</th>
            <th scope="col">
              <span className="sr-only">Remove</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {def.fields.map((f, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: rows are edited in place
            <tr key={i}>
              <td>
                <input
                  aria-label={`Field ${i + 1} name`}
                  value={f.name}
                  onChange={(e) => setField(i, { name: e.target.value })}
                />
              </td>
              <td>
                <select
                  aria-label={`Field ${i + 1} type`}
                  value={f.type}
                  onChange={(e) => setField(i, { type: e.target.value })}
                >
                  {TYPES.map((t) => (
                    <option key={t}>{t}</option>
                  ))}
                </select>
              </td>
              <td>
                <input
                  type="checkbox"
                  aria-label={`Field ${i + 1} required`}
                  checked={!!f.required}
                  onChange={(e) => setField(i, { required: e.target.checked })}
                />
              </td>
              <td>
                <input
                  aria-label={`Field ${i + 1} path`}
                  value={f.path ?? ''}
                  placeholder={f.name}
                  onChange={(e) => setField(i, { path: e.target.value || undefined })}
                />
              </td>
              <td>
                <button
                  type="button"
                  className="secondary"
                  aria-label={`Remove field ${f.name || i + 1}`}
                  onClick={() => setDef((d) => ({ ...d, fields: d.fields.filter((_, j) => j !== i) }))}
                >
                  ✕
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <button
        type="button"
        className="secondary"
        onClick={() => setDef((d) => ({ ...d, fields: [...d.fields, { name: '', type: 'string' }] }))}
      >
        Add field
      </button>
      {note && <output className="note">{note}</output>}
      <ErrorBox error={error} />
      <div className="row actions">
        <button type="button" onClick={save} disabled={!!busy}>
          {busy === 'save' ? 'Saving…' : 'Save stream'}
        </button>
        <button type="button" className="secondary" onClick={props.onDone}>
          Cancel
        </button>
      </div>
    </section>
  )
}
