import { type FormEvent, useEffect, useState } from 'react'
import { ApiError, api, errorText, storedKey, storeKey } from './api'
import { CampaignsPage } from './pages/Campaigns'
import { HistoryPage } from './pages/History'
import { LookupPage } from './pages/Lookup'
import { MonitoringPage } from './pages/Monitoring'
import { StreamsPage } from './pages/Streams'
import { Link, navigate, usePath } from './router'

/** What the key may do: the server says, through GET /api/v1/whoami. */
export type Access = 'admin' | 'limited'

export interface WhoAmI {
  keyId: string
  name: string | null
  scopes: string[]
  admin: boolean
}

function whoami(key: string): Promise<WhoAmI> {
  return api<WhoAmI>('/api/v1/whoami', { key })
}

const PAGES: Array<{ path: string; label: string; admin: boolean }> = [
  { path: '/streams', label: 'Streams', admin: true },
  { path: '/lookup', label: 'Pull Marketing', admin: false },
  { path: '/campaigns', label: 'Campaigns', admin: true },
  { path: '/monitoring', label: 'Monitoring', admin: false },
  { path: '/history', label: 'History', admin: true },
]

export function App() {
  const path = usePath()
  const [me, setMe] = useState<WhoAmI | null>(null)
  const [checking, setChecking] = useState(!!storedKey())
  const access: Access | null = me ? (me.admin ? 'admin' : 'limited') : null

  useEffect(() => {
    const key = storedKey()
    if (!key) return
    whoami(key)
      .then(setMe)
      .catch(() => storeKey(null))
      .finally(() => setChecking(false))
  }, [])

  if (checking) return <p className="loading">Loading…</p>
  if (!me || !access) {
    return (
      <SignIn
        onSignedIn={(m) => {
          setMe(m)
          if (path === '/' || path === '/signin') navigate(m.admin ? '/streams' : '/lookup')
        }}
      />
    )
  }
  const pages = PAGES.filter((p) => access === 'admin' || !p.admin)
  const current = pages.find((p) => path === p.path || path.startsWith(`${p.path}/`))
  if (!current && pages[0]) {
    queueMicrotask(() => navigate(pages[0]!.path))
  }
  return (
    <div className="shell">
      <header className="top">
        <span className="brand">Riffle</span>
        <nav aria-label="Pages">
          {pages.map((p) => (
            <Link key={p.path} to={p.path} current={p === current}>
              {p.label}
            </Link>
          ))}
        </nav>
        <span className="who" title={`Key ${me.keyId}: ${me.scopes.join(', ')}`}>
          {me.name ?? `key ${me.keyId}`} · {me.admin ? 'admin' : me.scopes.join(', ')}
        </span>
        <button
          type="button"
          className="secondary"
          onClick={() => {
            storeKey(null)
            setMe(null)
            navigate('/signin')
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        {current?.path === '/streams' && <StreamsPage />}
        {current?.path === '/lookup' && <LookupPage access={access} />}
        {current?.path === '/campaigns' && <CampaignsPage path={path} />}
        {current?.path === '/monitoring' && <MonitoringPage />}
        {current?.path === '/history' && <HistoryPage path={path} />}
      </main>
    </div>
  )
}

function SignIn(props: { onSignedIn: (m: WhoAmI) => void }) {
  const [key, setKey] = useState('')
  const [error, setError] = useState('')
  const [busy, setBusy] = useState(false)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setBusy(true)
    setError('')
    try {
      const me = await whoami(key.trim())
      storeKey(key.trim())
      props.onSignedIn(me)
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'That key is not valid.' : errorText(err))
    } finally {
      setBusy(false)
    }
  }
  return (
    <main className="signin">
      <h1>Riffle</h1>
      <p>Real-time, event-triggered marketing. Sign in with an API key.</p>
      <form onSubmit={submit}>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          placeholder="rfl_…"
          required
        />
        <button type="submit" disabled={busy || !key.trim()}>
          Sign in
        </button>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <p className="hint">
          Create one with <code>riffle keys create --scope admin</code>.
        </p>
      </form>
    </main>
  )
}
