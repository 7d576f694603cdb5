/**
 * The types of a scheduled campaign's pull outputs, checked against the audience's columns before a
 * run reads its first row or writes anything.
 *
 * When definitions are applied, `row` is dynamic: the data store's columns are not known then (the
 * tables may be loaded later, or change). At run start they are: the audience is described with a
 * `LIMIT 0` query. Each pull output's `set` expressions (and the content they read) are type-checked
 * again with `row` typed by those columns, under the same rule (`assignable`) that real-time
 * campaigns meet when applied. A mismatch is an error naming the campaign, the field and its type,
 * the value's type and the columns it comes from; the run fails before its first batch.
 */
import type { ColumnInfo, ColumnKind } from '../datastore/store.js'
import type { Campaign, Collection, FieldType } from '../definitions/schema.js'
import { riffleError } from '../errors.js'
import { assignable, type CelScope, checkCel, checkEnvironment, displayType } from '../expressions/cel.js'

const CEL_OF_KIND: Record<ColumnKind, string> = {
  integer: 'int',
  number: 'double',
  string: 'string',
  boolean: 'bool',
  timestamp: 'google.protobuf.Timestamp',
  other: 'dyn',
}

/** A SQL cast that makes a column fit a field, for the hint in the message. */
const CAST_TO: Partial<Record<FieldType, string>> = {
  string: 'VARCHAR',
  number: 'DOUBLE',
  integer: 'BIGINT',
  boolean: 'BOOLEAN',
  timestamp: 'TIMESTAMP',
}

const ROW_REF = /\brow\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:"([^"]*)"|'([^']*)')\s*\])/g

function columnsIn(expr: string, columns: ColumnInfo[]): ColumnInfo[] {
  const out: ColumnInfo[] = []
  for (const m of expr.matchAll(ROW_REF)) {
    const name = m[1] ?? m[2] ?? m[3]
    const col = columns.find((c) => c.name === name)
    if (col && !out.includes(col)) out.push(col)
  }
  return out
}

/**
 * Every type mismatch between the audience's columns and the pull outputs' fields, each a sentence
 * naming campaign, field, types and columns; empty when everything fits.
 */
export function outputTypeProblems(
  campaign: Campaign,
  collections: readonly Collection[],
  columns: ColumnInfo[],
): string[] {
  const byName = new Map(collections.map((c) => [c.name, c]))
  const aliases: NonNullable<CelScope['aliases']> = {}
  for (const e of campaign.enrich ?? []) {
    const col = byName.get(e.collection)
    if (col) aliases[e.as] = col
  }
  const scope: CelScope = { now: true, campaign: true, aliases }
  const rowFields: Record<string, string> = {}
  for (const c of columns) rowFields[c.name] = CEL_OF_KIND[c.kind]
  const typed = (content?: Record<string, string>) => {
    const env = checkEnvironment(content ? { ...scope, content } : scope)
    env.registerType('riffle.Row', { fields: rowFields })
    env.registerVariable('row', 'riffle.Row')
    return env
  }
  let env: ReturnType<typeof typed>
  try {
    env = typed()
  } catch {
    return [] // column names CEL cannot declare: no static verdict; values are still checked per row
  }
  const contentTypes: Record<string, string> = {}
  for (const [name, value] of Object.entries(campaign.content ?? {})) {
    if (typeof value !== 'string') contentTypes[name] = 'string'
    else {
      const r = checkCel(env, value)
      contentTypes[name] = r.ok ? r.type : 'dyn'
    }
  }
  const outEnv = typed(contentTypes)
  const problems: string[] = []
  campaign.outputs?.forEach((o, i) => {
    if (!('pull' in o)) return
    const col = byName.get(o.pull.collection)
    if (!col) return
    for (const [field, expr] of Object.entries(o.pull.set ?? {})) {
      const ft = col.fields.find((f) => f.name === field)?.type
      if (!ft) continue
      const at = `campaign "${campaign.name}", outputs[${i}].pull.set.${field}`
      const r = checkCel(outEnv, expr)
      if (!r.ok) {
        const missing = /^No such key: (.+)$/.exec(r.message)?.[1]
        if (missing !== undefined && /\brow\b/.test(expr))
          problems.push(
            `${at}: \`${expr}\` reads column "${missing}", which the audience does not have (its columns: ${columns.map((c) => c.name).join(', ')})`,
          )
        continue
      }
      if (assignable(r.type, ft)) continue
      const from = columnsIn(expr, columns)
      const source =
        from.length === 0
          ? ''
          : from.length === 1 && expr.trim().replace(/\s+/g, '') === `row.${from[0]!.name}`
            ? ` from column "${from[0]!.name}" (${from[0]!.type})`
            : ` computed from column${from.length > 1 ? 's' : ''} ${from.map((c) => `"${c.name}" (${c.type})`).join(', ')}`
      const cast =
        from.length === 1 && CAST_TO[ft] ? `, e.g. CAST(${from[0]!.name} AS ${CAST_TO[ft]}) in the SQL` : ''
      problems.push(
        `${at}: field "${field}" of collection "${col.name}" is ${ft}, but \`${expr}\` has type ${displayType(r.type)}${source}; make the audience yield a ${ft}${cast}`,
      )
    }
  })
  return problems
}

/** Throws RIFFLE_BAD_REQUEST listing every mismatch; nothing has been read or written yet. */
export function checkOutputTypes(
  campaign: Campaign,
  collections: readonly Collection[],
  columns: ColumnInfo[],
) {
  const problems = outputTypeProblems(campaign, collections, columns)
  if (problems.length)
    throw riffleError(
      'RIFFLE_BAD_REQUEST',
      `type mismatch between the audience and the Pull Marketing database, found before the run read a row: ${problems.join('; ')}`,
    )
}
