import { type FormEvent, useEffect, useState } from 'react'
import { ApiError, api, errorText, storedKey, storeKey } from './api'
import { CampaignsPage } from './pages/Campaigns'
import { HistoryPage } from './pages/History'
import { LookupPage } from './pages/Lookup'
import { MonitoringPage } from './pages/Monitoring'
import { StreamsPage } from './pages/Streams'
import { Link, navigate, usePath } from './router'

/** What the key may do, found by asking: the API has no "who am I", so probe an admin route. */
export type Access = 'admin' | 'limited'

async function probe(key: string): Promise<Access> {
  try {
    await api('/api/v1/streams', { key })
    return 'admin'
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) return 'limited'
    throw e
  }
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
  const [access, setAccess] = useState<Access | null>(null)
  const [checking, setChecking] = useState(!!storedKey())

  useEffect(() => {
    const key = storedKey()
    if (!key) return
    probe(key)
      .then(setAccess)
      .catch(() => storeKey(null))
      .finally(() => setChecking(false))
  }, [])

  if (checking) return <p className="loading">Loading…</p>
  if (!access) {
    return (
      <SignIn
        onSignedIn={(a) => {
          setAccess(a)
          if (path === '/' || path === '/signin') navigate(a === 'admin' ? '/streams' : '/lookup')
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
        <span className="who">{access === 'admin' ? 'admin' : 'limited key'}</span>
        <button
          type="button"
          className="secondary"
          onClick={() => {
            storeKey(null)
            setAccess(null)
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
        {current?.path === '/history' && <HistoryPage />}
      </main>
    </div>
  )
}

function SignIn(props: { onSignedIn: (a: Access) => void }) {
  const [key, setKey] = useState('')
  const [error, setError] = useState('')
  const [busy, setBusy] = useState(false)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setBusy(true)
    setError('')
    try {
      const access = await probe(key.trim())
      storeKey(key.trim())
      props.onSignedIn(access)
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
