/**
 * CEL support. Expressions are type-checked once, when definitions are applied, in an environment
 * that declares the fields in scope with their types; they are then compiled for evaluation in a
 * shared dynamic environment (no per-evaluation conversion of values into typed wrappers).
 */
import { Environment } from '@marcbachmann/cel-js'
import type { FieldType } from '../definitions/schema.js'

/** A compiled expression: call it with the names in scope. */
export type CompiledCel = (scope: Record<string, unknown>) => unknown

export const CEL_TYPE: Record<FieldType, string> = {
  string: 'string',
  number: 'double',
  integer: 'int',
  boolean: 'bool',
  timestamp: 'google.protobuf.Timestamp',
  object: 'map<string, dyn>',
  array: 'list<dyn>',
}

/** A record type in scope: its fields and their field types. */
export interface RecordShape {
  fields: ReadonlyArray<{ name: string; type: FieldType }>
}

/** The names in scope for one expression, and their types. */
export interface CelScope {
  /** `event`: the stream's decoded fields. */
  event?: RecordShape
  /** `meta`: topic, partition, offset, timestamp, key. */
  meta?: boolean
  /** `row`: a data store row; columns are dynamic. */
  row?: boolean
  /** Enrichment aliases: each is a collection record, or null when missing. */
  aliases?: Record<string, RecordShape>
  /** `content`: the campaign's content fields with their CEL types (inside outputs). */
  content?: Record<string, string>
  /** `campaign` (name, version) and `cell`. */
  campaign?: boolean
  /** `now`: the evaluation time. */
  now?: boolean
}

export type CheckResult =
  | { ok: true; type: string; evaluate: CompiledCel }
  | { ok: false; message: string; offset?: number; end?: number; unknownVariable?: string }

// One shared runtime environment; every variable is dynamic there because checking already happened.
const runtime = new Environment({ unlistedVariablesAreDyn: true, enableOptionalTypes: true })

function typeName(prefix: string, name: string): string {
  return `${prefix}_${name.replace(/[^A-Za-z0-9_]/g, '_')}`
}

function fieldsOf(shape: RecordShape): Record<string, string> {
  const out: Record<string, string> = {}
  for (const f of shape.fields) out[f.name] = CEL_TYPE[f.type]
  return out
}

/** Builds the checking environment for one scope. It is built once per definition, never per event. */
export function checkEnvironment(scope: CelScope): Environment {
  const env = new Environment({ enableOptionalTypes: true })
  // Fields that are not required are null when absent, so `event.store != null` must check.
  for (const t of ['string', 'double', 'int', 'bool', 'google.protobuf.Timestamp', 'list<dyn>']) {
    env.registerOperator(`${t} == null`, (a: unknown) => a == null)
  }
  if (scope.event) {
    env.registerType('riffle.Event', { fields: fieldsOf(scope.event) })
    env.registerVariable('event', 'riffle.Event')
  }
  if (scope.meta) {
    env.registerType('riffle.Meta', {
      fields: {
        topic: 'string',
        partition: 'int',
        offset: 'string',
        timestamp: 'google.protobuf.Timestamp',
        key: 'string',
      },
    })
    env.registerVariable('meta', 'riffle.Meta')
  }
  if (scope.row) env.registerVariable('row', 'map<string, dyn>')
  for (const [alias, shape] of Object.entries(scope.aliases ?? {})) {
    const t = typeName('riffle.Pull', alias)
    env.registerType(t, { fields: fieldsOf(shape) })
    env.registerVariable(alias, t)
    // A missing record makes the alias null, so `alias == null` and `alias != null` must check.
    env.registerOperator(`${t} == null`, (a: unknown) => a == null)
  }
  if (scope.content) {
    env.registerType('riffle.Content', { fields: scope.content })
    env.registerVariable('content', 'riffle.Content')
  }
  if (scope.campaign) {
    env.registerType('riffle.Campaign', { fields: { name: 'string', version: 'int' } })
    env.registerVariable('campaign', 'riffle.Campaign')
    env.registerVariable('cell', 'string')
  }
  if (scope.now) env.registerVariable('now', 'google.protobuf.Timestamp')
  return env
}

/** Type-checks an expression in `env` and compiles it for evaluation. */
export function checkCel(env: Environment, expression: string): CheckResult {
  let result: ReturnType<Environment['check']>
  try {
    result = env.check(expression)
  } catch (e) {
    return failure(e)
  }
  if (!result.valid) return failure(result.error)
  let evaluate: CompiledCel
  try {
    evaluate = runtime.parse(expression) as unknown as CompiledCel
  } catch (e) {
    return failure(e)
  }
  return { ok: true, type: String(result.type), evaluate }
}

function failure(e: unknown): CheckResult {
  const err = e as { message?: string; range?: { start?: number; end?: number } } | undefined
  const first = (err?.message ?? String(e)).split('\n')[0] ?? 'invalid expression'
  const unknown = /^Unknown variable: ([A-Za-z_][A-Za-z0-9_]*)/.exec(first)?.[1]
  return {
    ok: false,
    message: first,
    ...(typeof err?.range?.start === 'number' ? { offset: err.range.start } : {}),
    ...(typeof err?.range?.end === 'number' ? { end: err.range.end } : {}),
    ...(unknown ? { unknownVariable: unknown } : {}),
  }
}

/** Compiles an expression that has already been checked (a part of a checked condition). */
export function compileChecked(expression: string): CompiledCel {
  return runtime.parse(expression) as unknown as CompiledCel
}

/** Whether a checked CEL type can be written into a field of the given type. */
export function assignable(celType: string, field: FieldType): boolean {
  if (celType === 'dyn' || celType.startsWith('dyn<') || celType === 'null') return true
  switch (field) {
    case 'string':
      return celType === 'string'
    case 'number':
      return celType === 'double' || celType === 'int' || celType === 'uint'
    case 'integer':
      return celType === 'int' || celType === 'uint'
    case 'boolean':
      return celType === 'bool'
    case 'timestamp':
      return celType === 'google.protobuf.Timestamp' || celType === 'string' || celType === 'int'
    case 'object':
      return celType.startsWith('map') || celType.startsWith('riffle.')
    case 'array':
      return celType.startsWith('list')
  }
}

/** Readable name of a CEL type for messages. */
export function displayType(celType: string): string {
  return celType === 'google.protobuf.Timestamp' ? 'timestamp' : celType.replace(/^riffle\.Pull_/, '')
}
