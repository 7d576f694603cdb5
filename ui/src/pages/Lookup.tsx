import { type FormEvent, useState } from 'react'
import type { Access } from '../App'
import { type Activation, ApiError, api, type CollectionDef, enc, type Versioned } from '../api'
import { ErrorBox, Field, fmtTime, Json, useAsync } from '../components'

interface RecordView {
  collection: string
  found: boolean
  fields?: Record<string, unknown>
  updatedAt?: string
  writer?: string
  error?: string
}

export function LookupPage(props: { access: Access }) {
  const admin = props.access === 'admin'
  const cols = useAsync(
    () =>
      admin
        ? api<{ items: Versioned<CollectionDef>[] }>('/api/v1/collections')
        : Promise.resolve({ items: [] }),
    [admin],
  )
  const [key, setKey] = useState(() => new URLSearchParams(location.search).get('key') ?? '')
  const [collection, setCollection] = useState('')
  const [results, setResults] = useState<RecordView[] | null>(null)
  const [history, setHistory] = useState<Activation[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const collections = (cols.data?.items ?? []).filter((c) => c.definition)

  const lookup = async (e: FormEvent) => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const names = admin ? collections.map((c) => c.name) : [collection]
      const views = await Promise.all(
        names.map(async (c): Promise<RecordView> => {
          try {
            const path = admin
              ? `/api/v1/collections/${enc(c)}/records/${enc(key)}`
              : `/pull/v1/${enc(c)}/${enc(key)}`
            const r = await api<any>(path)
            return admin
              ? { collection: c, found: true, fields: r.fields, updatedAt: r.updatedAt, writer: r.writer }
              : { collection: c, found: true, fields: r }
          } catch (err) {
            if (err instanceof ApiError && err.status === 404) return { collection: c, found: false }
            return { collection: c, found: false, error: err instanceof Error ? err.message : String(err) }
          }
        }),
      )
      setResults(views)
      if (admin) {
        const h = await api<{ items: Activation[] }>(`/api/v1/history/customers/${enc(key)}?limit=20`)
        setHistory(h.items)
      }
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <section>
      <h1>Pull Marketing database</h1>
      <ErrorBox error={cols.error} />
      {admin && (
        <>
          <h2>Collections</h2>
          {collections.length === 0 && <p className="muted">No collections are defined.</p>}
          <ul className="cards">
            {collections.map((c) => (
              <li key={c.name} className="card">
                <h3>{c.name}</h3>
                <p className="muted">
                  key <code>{c.definition!.key}</code> · version {c.version}
                </p>
                <p>
                  {c.definition!.fields.map((f) => (
                    <span key={f.name} className="tag">
                      {f.name}: {f.type}
                    </span>
                  ))}
                </p>
              </li>
            ))}
          </ul>
        </>
      )}
      <h2>Look up a customer</h2>
      <form className="row" onSubmit={lookup}>
        {!admin && (
          <Field label="Collection" id="lookup-collection">
            <input
              id="lookup-collection"
              value={collection}
              onChange={(e) => setCollection(e.target.value)}
              required
            />
          </Field>
        )}
        <Field label="Customer key" id="lookup-key">
          <input id="lookup-key" value={key} onChange={(e) => setKey(e.target.value)} required />
        </Field>
        <button type="submit" disabled={busy || !key}>
          {busy ? 'Looking up…' : 'Look up'}
        </button>
      </form>
      <ErrorBox error={error} />
      {results && (
        <ul className="cards">
          {results.map((r) => (
            <li key={r.collection} className="card">
              <h3>{r.collection}</h3>
              {r.error && <p className="error">{r.error}</p>}
              {!r.found && !r.error && <p className="muted">No record for this key.</p>}
              {r.found && (
                <>
                  {r.updatedAt && (
                    <p className="muted">
                      Last written {fmtTime(r.updatedAt)} by <code>{r.writer}</code>
                    </p>
                  )}
                  <Json value={r.fields} label={`${r.collection} record`} />
                </>
              )}
            </li>
          ))}
        </ul>
      )}
      {history && (
        <>
          <h2>Recent activations for {key}</h2>
          {history.length === 0 ? (
            <p className="muted">None.</p>
          ) : (
            <ul>
              {history.map((a) => (
                <li key={a.id}>
                  {fmtTime(a.outputTime)} — {a.campaign} v{a.campaignVersion} · {a.cell} · {a.status}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  )
}
