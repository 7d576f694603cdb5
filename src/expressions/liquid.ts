/** Liquid text templates: parsed once when definitions are applied, rendered per activation. */
import { Liquid, type Template } from 'liquidjs'

const engine = new Liquid({ strictFilters: true, ownPropertyOnly: true, cache: false })

export type CompiledTemplate = (scope: Record<string, unknown>) => string

export type TemplateCheck =
  | { ok: true; render: CompiledTemplate; roots: Array<Array<string | number>> }
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
  return { ok: true, roots, render: (scope) => engine.renderSync(parsed, scope) as string }
}
