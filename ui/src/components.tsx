import { type ReactNode, useEffect, useRef, useState } from 'react'
import { errorText } from './api'

export function ErrorBox(props: { error: unknown }) {
  if (!props.error) return null
  return (
    <p role="alert" className="error">
      {typeof props.error === 'string' ? props.error : errorText(props.error)}
    </p>
  )
}

export function Field(props: { label: string; id: string; children: ReactNode; hint?: string }) {
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      {props.children}
      {props.hint && <small className="hint">{props.hint}</small>}
    </div>
  )
}

/** Runs fn now and every `ms` while mounted; again at once when `ms` or `key` changes. */
export function useInterval(fn: () => void, ms: number, key?: string): void {
  const ref = useRef(fn)
  ref.current = fn
  // biome-ignore lint/correctness/useExhaustiveDependencies: key restarts the timer on purpose
  useEffect(() => {
    ref.current()
    const t = setInterval(() => ref.current(), ms)
    return () => clearInterval(t)
  }, [ms, key])
}

export function useAsync<T>(
  fn: () => Promise<T>,
  deps: unknown[],
): { data?: T; error?: unknown; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: unknown }>({})
  const [n, setN] = useState(0)
  // biome-ignore lint/correctness/useExhaustiveDependencies: deps are the caller's
  useEffect(() => {
    let live = true
    fn().then(
      (data) => live && setState({ data }),
      (error) => live && setState({ error }),
    )
    return () => {
      live = false
    }
  }, [...deps, n])
  return { ...state, reload: () => setN((x) => x + 1) }
}

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString()
}

/** The fields an expression can read, as `prefix.name: type` tags. */
export function FieldTags(props: { prefix: string; fields: Array<{ name: string; type: string }> }) {
  return (
    <p className="muted">
      Fields:{' '}
      {props.fields.map((f) => (
        <span key={f.name} className="tag">
          {props.prefix}.{f.name}: {f.type}
        </span>
      ))}
    </p>
  )
}

export function Json(props: { value: unknown; label?: string }) {
  return (
    // Focusable, so that a keyboard can scroll it (axe: scrollable-region-focusable).
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must take focus
    <pre className="json" title={props.label} tabIndex={0}>
      {JSON.stringify(props.value, null, 2)}
    </pre>
  )
}
