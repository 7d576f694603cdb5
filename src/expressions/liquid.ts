/** Liquid text templates: parsed once when definitions are applied, rendered per activation. */
import { Liquid, type Template } from 'liquidjs'

const engine = new Liquid({ strictFilters: true, ownPropertyOnly: true, cache: false })

export type CompiledTemplate = (scope: Record<string, unknown>) => string

export type TemplateCheck =
  | {
      ok: true
      render: CompiledTemplate
      roots: Array<Array<string | number>>
      /** Rendered without liquidjs (a simple template; see fastTemplate). */
      fast: boolean
    }
  | {
      ok: false
      message: string
      line?: number
      column?: number
      /** Character offsets in the template of the token at fault (end exclusive). */
      offset?: number
      end?: number
    }

export function checkTemplate(source: string): TemplateCheck {
  let parsed: Template[]
  try {
    parsed = engine.parse(source)
  } catch (e) {
    const err = e as {
      message?: string
      token?: { getPosition?: () => [number, number]; begin?: number; end?: number }
    }
    const pos = err.token?.getPosition?.()
    const { begin, end } = err.token ?? {}
    return {
      ok: false,
      message: (err.message ?? String(e)).replace(/, line:\d+, col:\d+$/, ''),
      ...(pos ? { line: pos[0], column: pos[1] } : {}),
      ...(typeof begin === 'number' && typeof end === 'number' ? { offset: begin, end } : {}),
    }
  }
  const roots = engine
    .globalVariableSegmentsSync(parsed)
    .map((segs) => segs.map((s) => (typeof s === 'number' ? s : String(s))))
  const full: CompiledTemplate = (scope) => engine.renderSync(parsed, scope) as string
  const fast = fastTemplate(source, full)
  return { ok: true, roots, fast: fast !== undefined, render: fast ?? full }
}

/**
 * The common template, text with `{{ a.b.c }}` or `{{ a.b | default: "x" }}` outputs and nothing
 * else, rendered without liquidjs's per-render machinery (its contexts and generators allocate
 * some kilobytes per render). The result is the same as liquidjs's, with this file's options
 * (ownPropertyOnly, no strict variables); anything else (tags, other filters, whitespace control,
 * `size`/`first`/`last`, literals) is left to liquidjs. test/expressions/liquid.test.ts compares the
 * two on many templates and values.
 */
function fastTemplate(source: string, full: CompiledTemplate): CompiledTemplate | undefined {
  if (source.includes('{%')) return undefined
  const parts: Array<string | { path: string[]; fallback: unknown; hasFallback: boolean }> = []
  let i = 0
  while (i < source.length) {
    const open = source.indexOf('{{', i)
    if (open < 0) {
      parts.push(source.slice(i))
      break
    }
    if (open > i) parts.push(source.slice(i, open))
    const close = source.indexOf('}}', open + 2)
    if (close < 0) return undefined
    const m = OUTPUT.exec(source.slice(open + 2, close))
    if (!m) return undefined
    const path = m[1]!.split('.')
    if (LITERALS.has(path[0]!) || path.some((seg) => SPECIAL.has(seg))) return undefined
    const hasFallback = m[2] !== undefined || m[3] !== undefined || m[4] !== undefined
    const fallback = m[2] ?? m[3] ?? (m[4] !== undefined ? Number(m[4]) : undefined)
    parts.push({ path, fallback, hasFallback })
    i = close + 2
  }
  return (scope) => {
    let out = ''
    for (const p of parts) {
      if (typeof p === 'string') {
        out += p
        continue
      }
      let v: unknown = scope
      for (const seg of p.path) {
        if (v === null || v === undefined) break
        v = hasOwn.call(v, seg) ? (v as Record<string, unknown>)[seg] : undefined
        if (typeof v === 'function') return full(scope) // liquidjs calls it; leave that to liquidjs
      }
      if (p.hasFallback) {
        if (Array.isArray(v) || typeof v === 'string') {
          if (v.length === 0) v = p.fallback
        } else if (v === false || v === null || v === undefined) v = p.fallback
      }
      out += stringify(v)
    }
    return out
  }
}

const OUTPUT =
  /^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*(?:\|\s*default\s*:\s*(?:'([^'\\]*)'|"([^"\\]*)"|(-?\d+(?:\.\d+)?))\s*)?$/
const LITERALS = new Set(['true', 'false', 'nil', 'null', 'empty', 'blank'])
const SPECIAL = new Set(['size', 'first', 'last'])
const hasOwn = Object.prototype.hasOwnProperty

/** liquidjs's output of a value. */
function stringify(v: unknown): string {
  if (typeof v === 'string') return v
  if (v === null || v === undefined) return ''
  if (Array.isArray(v)) return v.map(stringify).join('')
  return String(v)
}
