/** Structural validation against the TypeBox schemas, with errors people can act on. */
import type { TSchema } from 'typebox'
import { Value } from 'typebox/value'
import type { PathSegment } from './source.js'

export interface StructuralIssue {
  path: PathSegment[]
  message: string
}

interface RawError {
  instancePath: string
  schemaPath: string
  keyword: string
  message: string
  params: Record<string, unknown>
}

function pointerToPath(pointer: string): PathSegment[] {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
}

/** Among the branches of each union, keeps only the errors of the branch the value came closest to. */
function resolveUnions(errors: RawError[]): RawError[] {
  let current = errors.filter((e) => e.keyword !== 'boolean')
  for (;;) {
    const withUnion = current
      .map((e) => ({ e, i: e.schemaPath.indexOf('/anyOf/') }))
      .filter((x) => x.i >= 0)
      .sort((a, b) => a.i - b.i)
    const first = withUnion[0]
    if (!first) return current
    const prefix = first.e.schemaPath.slice(0, first.i)
    const counts = new Map<string, number>()
    for (const e of current) {
      if (!e.schemaPath.startsWith(`${prefix}/anyOf/`)) continue
      const branch = e.schemaPath.slice(prefix.length + 7).split('/')[0]!
      counts.set(branch, (counts.get(branch) ?? 0) + 1)
    }
    const best = [...counts.entries()].sort((a, b) => a[1] - b[1] || Number(a[0]) - Number(b[0]))[0]![0]
    current = current
      .filter((e) => !(e.schemaPath === prefix && e.keyword === 'anyOf'))
      .filter(
        (e) =>
          !e.schemaPath.startsWith(`${prefix}/anyOf/`) || e.schemaPath.startsWith(`${prefix}/anyOf/${best}`),
      )
      .map((e) =>
        e.schemaPath.startsWith(`${prefix}/anyOf/`)
          ? { ...e, schemaPath: prefix + e.schemaPath.slice(prefix.length + 7 + best.length) }
          : e,
      )
  }
}

function describe(e: RawError): string {
  switch (e.keyword) {
    case 'additionalProperties': {
      const extra = (e.params.additionalProperties as string[] | undefined) ?? []
      return `unknown property ${extra.map((x) => `"${x}"`).join(', ')}`
    }
    case 'required': {
      const missing = (e.params.requiredProperties as string[] | undefined) ?? []
      return `missing required property ${missing.map((x) => `"${x}"`).join(', ')}`
    }
    case 'enum': {
      const allowed = (e.params.allowedValues as unknown[] | undefined) ?? []
      return allowed.length ? `must be one of ${allowed.map((x) => JSON.stringify(x)).join(', ')}` : e.message
    }
    case 'pattern':
      return `${e.message}`
    default:
      return e.message
  }
}

/** Checks `value` against `schema`; each issue's path is relative to `base`. */
export function structuralIssues(
  schema: TSchema,
  value: unknown,
  base: PathSegment[] = [],
): StructuralIssue[] {
  if (Value.Check(schema, value)) return []
  const raw = [...Value.Errors(schema, value)] as unknown as RawError[]
  const seen = new Set<string>()
  const out: StructuralIssue[] = []
  for (const e of resolveUnions(raw)) {
    const path = [...base, ...pointerToPath(e.instancePath)]
    const message = describe(e)
    const k = `${path.join('/')}\0${message}`
    if (seen.has(k)) continue
    seen.add(k)
    out.push({ path, message })
  }
  return out
}
