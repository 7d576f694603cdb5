/** Prometheus text from /metrics, parsed, and turned into per-second rates between two scrapes. */

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const m = LINE.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    if (m[2]) for (const l of m[2].matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1')
    out.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}

export interface Scrape {
  at: number
  samples: Sample[]
}

export async function scrape(): Promise<Scrape> {
  const res = await fetch('/metrics')
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`)
  return { at: Date.now(), samples: parseMetrics(await res.text()) }
}

/** Sums a metric's samples grouped by the given labels. */
export function sumBy(
  s: Scrape,
  name: string,
  by: string[],
  filter?: (l: Record<string, string>) => boolean,
) {
  const out = new Map<string, number>()
  for (const x of s.samples) {
    if (x.name !== name || (filter && !filter(x.labels))) continue
    const k = by.map((b) => x.labels[b] ?? '').join(' / ')
    out.set(k, (out.get(k) ?? 0) + x.value)
  }
  return out
}

/** Per-second rate of a counter between two scrapes, grouped. */
export function rates(
  prev: Scrape,
  cur: Scrape,
  name: string,
  by: string[],
  filter?: (l: Record<string, string>) => boolean,
) {
  const a = sumBy(prev, name, by, filter)
  const b = sumBy(cur, name, by, filter)
  const dt = Math.max(0.001, (cur.at - prev.at) / 1000)
  const out = new Map<string, number>()
  for (const [k, v] of b) out.set(k, Math.max(0, (v - (a.get(k) ?? 0)) / dt))
  return out
}

/** A quantile of a histogram over the interval between two scrapes (all label sets merged). */
export function quantile(prev: Scrape, cur: Scrape, name: string, q: number): number | null {
  const buckets = (s: Scrape) => {
    const m = new Map<number, number>()
    for (const x of s.samples) {
      if (x.name !== `${name}_bucket`) continue
      const le = x.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(x.labels.le)
      m.set(le, (m.get(le) ?? 0) + x.value)
    }
    return m
  }
  const a = buckets(prev)
  const b = buckets(cur)
  const les = [...b.keys()].sort((x, y) => x - y)
  const counts = les.map((le) => (b.get(le) ?? 0) - (a.get(le) ?? 0))
  const total = counts[counts.length - 1] ?? 0
  if (total <= 0) return null
  const rank = q * total
  for (let i = 0; i < les.length; i++) {
    if (counts[i]! >= rank) {
      const hi = les[i]!
      const lo = i === 0 ? 0 : les[i - 1]!
      if (!Number.isFinite(hi)) return lo
      const below = i === 0 ? 0 : counts[i - 1]!
      const inBucket = counts[i]! - below
      return inBucket > 0 ? lo + ((hi - lo) * (rank - below)) / inBucket : hi
    }
  }
  return null
}
