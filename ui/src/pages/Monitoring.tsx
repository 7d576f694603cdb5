import { type FormEvent, useEffect, useRef, useState } from 'react'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { ApiError, api } from '../api'
import { ErrorBox, Field, Json, useInterval } from '../components'
import { quantile, rates, type Scrape, scrape, sumBy } from '../metrics'

const WINDOW = 120 // seconds kept on the charts
const COLORS = ['#1f5fbf', '#c0392b', '#1e8449', '#8e44ad', '#b9770e', '#117a8b', '#6c3483', '#566573']

interface Series {
  times: number[]
  lines: Map<string, number[]>
}

function push(s: Series, t: number, values: Map<string, number>): Series {
  const times = [...s.times, t].slice(-WINDOW)
  const lines = new Map<string, number[]>()
  const keys = new Set([...s.lines.keys(), ...values.keys()])
  for (const k of keys) {
    const old = s.lines.get(k) ?? new Array<number>(s.times.length).fill(0)
    lines.set(k, [...old, values.get(k) ?? 0].slice(-WINDOW))
  }
  return { times, lines }
}

const empty = (): Series => ({ times: [], lines: new Map() })

export function MonitoringPage() {
  const prev = useRef<Scrape | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [events, setEvents] = useState(empty)
  const [acts, setActs] = useState(empty)
  const [latency, setLatency] = useState(empty)
  const [lag, setLag] = useState(empty)
  const [errors, setErrors] = useState(empty)
  const [totals, setTotals] = useState<Map<string, number>>(new Map())

  useInterval(() => {
    scrape().then(
      (cur) => {
        setError(null)
        const p = prev.current
        prev.current = cur
        if (!p) return
        const t = cur.at / 1000
        setEvents((s) => push(s, t, rates(p, cur, 'riffle_events_in_total', ['stream'])))
        setActs((s) => push(s, t, rates(p, cur, 'riffle_activations_total', ['campaign', 'cell'])))
        const q = new Map<string, number>()
        q.set('p50 ms', (quantile(p, cur, 'riffle_event_to_output_seconds', 0.5) ?? 0) * 1000)
        q.set('p99 ms', (quantile(p, cur, 'riffle_event_to_output_seconds', 0.99) ?? 0) * 1000)
        setLatency((s) => push(s, t, q))
        setLag((s) => push(s, t, sumBy(cur, 'riffle_consumer_lag', ['topic'])))
        const e = new Map<string, number>()
        for (const [k, v] of rates(p, cur, 'riffle_dead_letters_total', ['stream']))
          e.set(`dead letters ${k}`, v)
        for (const [k, v] of rates(
          p,
          cur,
          'riffle_activations_total',
          ['campaign'],
          (l) => l.status === 'error' || l.status === 'failed',
        ))
          e.set(`errors ${k}`, v)
        for (const [k, v] of rates(p, cur, 'riffle_campaign_errors_total', ['campaign']))
          e.set(`campaign errors ${k}`, v)
        setErrors((s) => push(s, t, e))
        setTotals(sumBy(cur, 'riffle_activations_total', ['campaign', 'cell', 'status']))
      },
      (e) => setError(e),
    )
  }, 1000)

  return (
    <section>
      <h1>Monitoring</h1>
      <ErrorBox error={error} />
      <div className="charts">
        <Chart title="Events per second, per stream" series={events} unit="/s" />
        <Chart title="Activations per second, per campaign and cell" series={acts} unit="/s" />
        <Chart title="Event to output latency" series={latency} unit="ms" />
        <Chart title="Consumer lag (messages)" series={lag} unit="" />
        <Chart title="Errors and dead letters per second" series={errors} unit="/s" />
      </div>
      <h2>Activations since start</h2>
      {totals.size === 0 ? (
        <p className="muted">None yet.</p>
      ) : (
        <table aria-label="Activations since start">
          <thead>
            <tr>
              <th scope="col">Campaign / cell / status</th>
              <th scope="col">Count</th>
            </tr>
          </thead>
          <tbody>
            {[...totals].map(([k, v]) => (
              <tr key={k}>
                <td>{k}</td>
                <td className="num">{v}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Trace />
    </section>
  )
}

function Chart(props: { title: string; series: Series; unit: string }) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const keys = [...props.series.lines.keys()]
  const shape = keys.join('|')
  // biome-ignore lint/correctness/useExhaustiveDependencies: the plot is rebuilt when its set of lines changes
  useEffect(() => {
    if (!box.current) return
    plot.current?.destroy()
    plot.current = new uPlot(
      {
        width: Math.max(300, box.current.clientWidth),
        height: 200,
        legend: { show: true },
        scales: { x: { time: true } },
        axes: [{}, { size: 80, values: (_u, v) => v.map((x) => `${+x.toFixed(2)}${props.unit}`) }],
        series: [
          {},
          ...keys.map((k, i) => ({ label: k || '(all)', stroke: COLORS[i % COLORS.length], width: 2 })),
        ],
      },
      [[], ...keys.map(() => [])],
      box.current,
    )
    return () => {
      plot.current?.destroy()
      plot.current = null
    }
  }, [shape])
  useEffect(() => {
    plot.current?.setData([props.series.times, ...keys.map((k) => props.series.lines.get(k)!)])
  })
  const last = keys.map(
    (k) => `${k || '(all)'} ${(props.series.lines.get(k)?.at(-1) ?? 0).toFixed(2)}${props.unit}`,
  )
  return (
    <figure className="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={box} role="img" aria-label={`${props.title}: ${last.join(', ') || 'no data yet'}`} />
      {keys.length === 0 && <p className="muted">No data yet.</p>}
    </figure>
  )
}

function Trace() {
  const [q, setQ] = useState({ topic: '', partition: '0', offset: '' })
  const [result, setResult] = useState<unknown>(null)
  const [error, setError] = useState<unknown>(null)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setError(null)
    setResult(null)
    try {
      setResult(await api(`/api/v1/trace?${new URLSearchParams(q)}`))
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 404 && err.message.startsWith('no route')
          ? 'The trace tool is not available on this server yet.'
          : err,
      )
    }
  }
  return (
    <section className="panel">
      <h2>Trace a message</h2>
      <p className="muted">See why each campaign did or did not fire for one Kafka message.</p>
      <form className="row" onSubmit={submit}>
        <Field label="Topic" id="t-topic">
          <input
            id="t-topic"
            value={q.topic}
            onChange={(e) => setQ({ ...q, topic: e.target.value })}
            required
          />
        </Field>
        <Field label="Partition" id="t-partition">
          <input
            id="t-partition"
            type="number"
            min={0}
            value={q.partition}
            onChange={(e) => setQ({ ...q, partition: e.target.value })}
          />
        </Field>
        <Field label="Offset" id="t-offset">
          <input
            id="t-offset"
            value={q.offset}
            onChange={(e) => setQ({ ...q, offset: e.target.value })}
            required
          />
        </Field>
        <button type="submit">Trace</button>
      </form>
      <ErrorBox error={error} />
      {result !== null && <Json value={result} label="Trace result" />}
    </section>
  )
}
