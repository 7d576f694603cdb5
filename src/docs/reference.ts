/**
 * Generates the definitions-file reference (docs/definitions-reference.md) from the TypeBox
 * schemas, so the reference can never drift from what validation accepts.
 */
import type { TSchema } from 'typebox'
import { Campaign, Collection, DataStoreSettings, DefinitionsFile, Stream } from '../definitions/schema.js'

interface Node {
  type?: string
  description?: string
  properties?: Record<string, Node>
  required?: string[]
  items?: Node
  anyOf?: Node[]
  enum?: unknown[]
  const?: unknown
  pattern?: string
  minimum?: number
  maximum?: number
  patternProperties?: Record<string, Node>
  format?: string
}

function typeOf(n: Node): string {
  if (n.enum) return n.enum.map((e) => `\`${String(e)}\``).join(' \\| ')
  if (n.const !== undefined) return `\`${String(n.const)}\``
  if (n.anyOf) return n.anyOf.map(typeOf).join(' or ')
  if (n.type === 'array') return `list of ${n.items ? typeOf(n.items) : 'values'}`
  if (n.type === 'object' && n.patternProperties)
    return `map of ${typeOf(Object.values(n.patternProperties)[0]!)}`
  if (n.type === 'object' && n.properties) return 'object'
  return n.type ?? 'value'
}

function rows(n: Node, prefix: string, out: string[]): void {
  for (const [k, v] of Object.entries(n.properties ?? {})) {
    const path = prefix ? `${prefix}.${k}` : k
    const req = n.required?.includes(k) ? 'yes' : ''
    const extra = [
      v.minimum !== undefined ? `min ${v.minimum}` : '',
      v.maximum !== undefined ? `max ${v.maximum}` : '',
      v.format ?? '',
    ]
      .filter(Boolean)
      .join(', ')
    out.push(
      `| \`${path}\` | ${typeOf(v)} | ${req} | ${(v.description ?? '').replace(/\|/g, '\\|')}${extra ? ` (${extra})` : ''} |`,
    )
    const nested = v.type === 'array' ? v.items : v
    if (nested?.properties) rows(nested, v.type === 'array' ? `${path}[]` : path, out)
    for (const branch of nested?.anyOf ?? []) {
      if (branch.properties) rows(branch, v.type === 'array' ? `${path}[]` : path, out)
    }
  }
}

function section(title: string, schema: TSchema, intro: string): string {
  const out = [`## ${title}`, '', intro, '', '| field | type | required | description |', '|---|---|---|---|']
  rows(schema as unknown as Node, '', out)
  return out.join('\n')
}

export function definitionsReference(): string {
  return [
    '# Definitions file reference',
    '',
    '<!-- Generated from src/definitions/schema.ts by `npm run docs`; do not edit by hand. -->',
    '',
    'A definitions file has four optional sections: `streams`, `collections`, `datastore` and `campaigns`.',
    'Apply it with `riffle apply -f FILE`; check it with `riffle validate -f FILE`. Expressions are CEL;',
    '`{ template: … }` values are Liquid. See `examples/definitions.yaml`.',
    '',
    section(
      'streams[]',
      Stream,
      'A Kafka message stream. Once defined, it is an audience and a field set in the campaign designer.',
    ),
    '',
    section('collections[]', Collection, 'A keyed record set in the Pull Marketing database.'),
    '',
    section(
      'datastore',
      DataStoreSettings,
      'Settings of the analytical data store, the audience of scheduled campaigns.',
    ),
    '',
    section(
      'campaigns[]',
      Campaign,
      'A campaign. Stream-triggered campaigns may use only `event`, `meta` and enrichment aliases (the Pull Marketing database); scheduled ones use `row`.',
    ),
    '',
    '## Names in scope for expressions',
    '',
    '| name | where | what |',
    '|---|---|---|',
    '| `event` | stream-triggered | the decoded, typed fields of the event |',
    '| `meta` | stream-triggered | `topic`, `partition`, `offset`, `timestamp`, `key` of the Kafka message |',
    '| `row` | scheduled | the data store row |',
    "| `<alias>` | both | an enrichment's collection record, or `null` when missing |",
    "| `content` | outputs | the campaign's content fields |",
    '| `campaign`, `cell` | both | `campaign.name`, `campaign.version`; the cell the activation fell in |',
    '| `now` | both | the evaluation time |',
    '',
    `Field types map to CEL types: string → string, number → double, integer → int, boolean → bool, timestamp → timestamp, object → map, array → list.`,
    '',
    `<!-- top-level keys: ${Object.keys((DefinitionsFile as unknown as Node).properties ?? {}).join(', ')} -->`,
    '',
  ].join('\n')
}
