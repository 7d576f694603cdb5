/**
 * The administration suite's core: apply, validate and export definitions; create, replace,
 * delete, activate and pause them. Every change is validated against the whole resulting state,
 * so nothing that would leave a dangling reference is ever stored.
 */
import { stringify } from 'yaml'
import { formatIssues, type Issue, riffleError } from '../errors.js'
import { type CampaignStatus, type Definitions, type Kind, orderLike, SCHEMA_BY_KIND } from './schema.js'
import type { SourceDocument } from './source.js'
import { type Change, canonicalJson, type DefinitionsStore, type StoredDefinition } from './store.js'
import {
  type CompiledCampaign,
  type DefinitionsInput,
  type Located,
  validateDefinitions,
} from './validate.js'

export interface ApplySummary {
  revision: number
  created: string[]
  updated: string[]
  deleted: string[]
  unchanged: number
  dryRun: boolean
  /**
   * Campaigns the file makes active that were paused or archived (a file's campaigns are active
   * unless they say otherwise): `campaign "x" (was paused)`.
   */
  resumed: string[]
}

export interface Snapshot {
  revision: number
  definitions: Definitions
  compiled: Map<string, CompiledCampaign>
  versions: Map<string, number>
}

const LIST_KEY: Record<Exclude<Kind, 'datastore'>, 'streams' | 'collections' | 'campaigns'> = {
  stream: 'streams',
  collection: 'collections',
  campaign: 'campaigns',
}

const DATASTORE_NAME = 'default'

function label(kind: Kind, name: string): string {
  return kind === 'datastore' ? 'datastore' : `${kind} ${name}`
}

/** Turns stored definitions into the validator's input; each located by kind and name. */
function storedInput(
  current: StoredDefinition[],
  skip: (d: StoredDefinition) => boolean = () => false,
): DefinitionsInput {
  const input: DefinitionsInput = { streams: [], collections: [], campaigns: [] }
  for (const d of current) {
    if (skip(d)) continue
    const at: Located = { value: d.spec, path: [`${d.kind} "${d.name}" (already applied)`] }
    if (d.kind === 'datastore') input.datastore = at
    else input[LIST_KEY[d.kind]].push(at)
  }
  return input
}

function fileInput(source: SourceDocument): { input: DefinitionsInput; problems: string[] } {
  const v = source.value
  const input: DefinitionsInput = { streams: [], collections: [], campaigns: [] }
  const problems: string[] = []
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    problems.push(
      'the definitions file must be a mapping with `streams`, `collections`, `datastore` and `campaigns`',
    )
    return { input, problems }
  }
  for (const [key, value] of Object.entries(v)) {
    if (key === 'datastore') {
      input.datastore = { value, path: ['datastore'], source }
    } else if (key === 'streams' || key === 'collections' || key === 'campaigns') {
      if (value === null || value === undefined) continue
      if (!Array.isArray(value)) {
        problems.push(`${key}: must be a list`)
        continue
      }
      value.forEach((item, i) => {
        const normalized =
          key === 'campaigns' &&
          item &&
          typeof item === 'object' &&
          !Array.isArray(item) &&
          !('status' in item)
            ? { ...item, status: 'active' } // a file's campaigns default to active
            : item
        input[key].push({ value: normalized, path: [key, i], source })
      })
    } else {
      problems.push(`unknown section "${key}": expected streams, collections, datastore or campaigns`)
    }
  }
  return { input, problems }
}

function nameOf(at: Located): string {
  return String((at.value as { name?: unknown }).name)
}

function invalid(issues: Issue[]): Error {
  const n = issues.length
  return riffleError(
    'RIFFLE_INVALID_DEFINITION',
    `${n} problem${n === 1 ? '' : 's'} found:\n${formatIssues(issues)}`,
    { issues },
  )
}

function merge(current: StoredDefinition[], file: DefinitionsInput, prune: boolean): DefinitionsInput {
  if (prune) return file
  const inFile = new Set<string>()
  for (const kind of ['stream', 'collection', 'campaign'] as const) {
    for (const at of file[LIST_KEY[kind]]) inFile.add(`${kind}\0${nameOf(at)}`)
  }
  if (file.datastore) inFile.add(`datastore\0${DATASTORE_NAME}`)
  const rest = storedInput(current, (d) => inFile.has(`${d.kind}\0${d.name}`))
  return {
    streams: [...file.streams, ...rest.streams],
    collections: [...file.collections, ...rest.collections],
    campaigns: [...file.campaigns, ...rest.campaigns],
    datastore: file.datastore ?? rest.datastore,
  }
}

function fileProblems(source: SourceDocument, problems: string[]): Issue[] {
  return problems.map((p) => ({ path: '(root)', message: p, ...(source.file ? { file: source.file } : {}) }))
}

/** Validates a definitions file on its own or, given the applied definitions, merged into them. */
export function validateFile(source: SourceDocument, current: StoredDefinition[] = []): { issues: Issue[] } {
  const { input, problems } = fileInput(source)
  if (problems.length) return { issues: fileProblems(source, problems) }
  return { issues: validateDefinitions(merge(current, input, false)).issues }
}

export class DefinitionsService {
  #snapshot: Snapshot | undefined

  constructor(readonly store: DefinitionsStore) {}

  /** Validates a file merged into the applied definitions (so references to them resolve). */
  async validate(source: SourceDocument): Promise<{ issues: Issue[] }> {
    return validateFile(source, await this.store.current())
  }

  #merge(current: StoredDefinition[], file: DefinitionsInput, prune: boolean): DefinitionsInput {
    return merge(current, file, prune)
  }

  /** Applies a file atomically and idempotently; `prune` deletes what the file no longer has. */
  async apply(
    source: SourceDocument,
    opts: { actor: string; prune?: boolean; dryRun?: boolean },
  ): Promise<ApplySummary> {
    const { input, problems } = fileInput(source)
    if (problems.length) {
      throw invalid(fileProblems(source, problems))
    }
    const prune = opts.prune ?? false
    const run = async (current: StoredDefinition[]) => {
      const merged = this.#merge(current, input, prune)
      const result = validateDefinitions(merged)
      if (result.issues.length) throw invalid(result.issues)
      const changes: Change[] = []
      const wanted = new Set<string>()
      for (const kind of ['stream', 'collection', 'campaign'] as const) {
        for (const at of input[LIST_KEY[kind]]) {
          wanted.add(`${kind}\0${nameOf(at)}`)
          changes.push({ kind, name: nameOf(at), spec: at.value })
        }
      }
      if (input.datastore) {
        wanted.add(`datastore\0${DATASTORE_NAME}`)
        changes.push({ kind: 'datastore', name: DATASTORE_NAME, spec: input.datastore.value })
      }
      if (prune) {
        for (const d of current)
          if (!wanted.has(`${d.kind}\0${d.name}`)) changes.push({ kind: d.kind, name: d.name, spec: null })
      }
      return { changes, result: { before: current, changes } }
    }
    if (opts.dryRun) {
      const current = await this.store.current()
      const { changes } = await run(current)
      return summarize(current, changes, await this.store.revision(), true)
    }
    const {
      write,
      result: { before, changes },
    } = await this.store.change(opts.actor, run)
    const declared =
      input.streams.length + input.collections.length + input.campaigns.length + (input.datastore ? 1 : 0)
    const summary: ApplySummary = {
      revision: write.revision,
      created: [],
      updated: [],
      deleted: [],
      unchanged: 0,
      dryRun: false,
      resumed: resumed(before, changes),
    }
    const existed = new Set(before.map((d) => `${d.kind}\0${d.name}`))
    for (const w of write.written) {
      const k = `${w.kind}\0${w.name}`
      if (w.deleted) summary.deleted.push(label(w.kind, w.name))
      else if (existed.has(k)) summary.updated.push(label(w.kind, w.name))
      else summary.created.push(label(w.kind, w.name))
    }
    summary.unchanged = Math.max(0, declared - (summary.created.length + summary.updated.length))
    return summary
  }

  /** The current definitions as a definitions file (round-trips through `apply`). */
  async exportDefinitions(): Promise<Record<string, unknown>> {
    const current = await this.store.current()
    const out: Record<string, unknown> = {}
    const by = (kind: Kind) =>
      current.filter((d) => d.kind === kind).map((d) => orderLike(SCHEMA_BY_KIND[kind], d.spec))
    if (by('stream').length) out.streams = by('stream')
    if (by('collection').length) out.collections = by('collection')
    const ds = by('datastore')[0]
    if (ds) out.datastore = ds
    if (by('campaign').length) out.campaigns = by('campaign')
    return out
  }

  async exportYaml(): Promise<string> {
    return stringify(await this.exportDefinitions(), { lineWidth: 0 })
  }

  async list(kind: Kind): Promise<StoredDefinition[]> {
    return (await this.store.current()).filter((d) => d.kind === kind)
  }

  async get(kind: Kind, name: string): Promise<StoredDefinition> {
    const d = await this.store.get(kind, name)
    if (!d) throw riffleError('RIFFLE_NOT_FOUND', `${kind} "${name}" does not exist`)
    return d
  }

  /** Creates (`mode: create`), replaces (`replace`) or upserts one definition, validating the whole result. */
  async put(
    kind: Kind,
    spec: unknown,
    actor: string,
    mode: 'create' | 'replace' | 'upsert',
  ): Promise<StoredDefinition> {
    const name = kind === 'datastore' ? DATASTORE_NAME : String((spec as { name?: unknown })?.name ?? '')
    await this.store.change(actor, (current) => {
      const exists = current.some((d) => d.kind === kind && d.name === name)
      if (mode === 'create' && exists)
        throw riffleError('RIFFLE_CONFLICT', `${kind} "${name}" already exists; use PUT to replace it`)
      if (mode === 'replace' && !exists)
        throw riffleError('RIFFLE_NOT_FOUND', `${kind} "${name}" does not exist`)
      const input = storedInput(current, (d) => d.kind === kind && d.name === name)
      const at: Located = { value: spec, path: [] }
      if (kind === 'datastore') input.datastore = at
      else input[LIST_KEY[kind]].unshift(at)
      const result = validateDefinitions(input)
      if (result.issues.length) throw invalid(result.issues)
      return { changes: [{ kind, name, spec }], result: undefined }
    })
    return this.get(kind, name)
  }

  /** Deletes one definition; refused while another definition still refers to it. */
  async remove(kind: Kind, name: string, actor: string): Promise<void> {
    await this.store.change(actor, (current) => {
      if (!current.some((d) => d.kind === kind && d.name === name)) {
        throw riffleError('RIFFLE_NOT_FOUND', `${kind} "${name}" does not exist`)
      }
      const result = validateDefinitions(storedInput(current, (d) => d.kind === kind && d.name === name))
      if (result.issues.length) {
        throw riffleError(
          'RIFFLE_CONFLICT',
          `${kind} "${name}" is still in use:\n${formatIssues(result.issues)}`,
          {
            issues: result.issues,
          },
        )
      }
      return { changes: [{ kind, name, spec: null }], result: undefined }
    })
  }

  async setStatus(name: string, status: CampaignStatus, actor: string): Promise<StoredDefinition> {
    const d = await this.get('campaign', name)
    const spec = { ...(d.spec as Record<string, unknown>), status }
    if (canonicalJson(spec) === canonicalJson(d.spec)) return d
    return this.put('campaign', spec, actor, 'replace')
  }

  /** The current definitions with every campaign compiled; rebuilt only when the revision moves. */
  async snapshot(): Promise<Snapshot> {
    const revision = await this.store.revision()
    if (this.#snapshot && this.#snapshot.revision === revision) return this.#snapshot
    const current = await this.store.current()
    const result = validateDefinitions(storedInput(current))
    const versions = new Map(current.map((d) => [`${d.kind}:${d.name}`, d.version]))
    this.#snapshot = { revision, definitions: result.definitions, compiled: result.compiled, versions }
    return this.#snapshot
  }
}

/** Campaigns that were paused or archived and that these changes make active. */
function resumed(current: StoredDefinition[], changes: Change[]): string[] {
  const was = new Map(
    current
      .filter((d) => d.kind === 'campaign')
      .map((d) => [d.name, (d.spec as { status?: string }).status ?? 'active']),
  )
  return changes
    .filter((ch) => ch.kind === 'campaign' && ch.spec !== null)
    .filter((ch) => ((ch.spec as { status?: string }).status ?? 'active') === 'active')
    .filter((ch) => was.get(ch.name) === 'paused' || was.get(ch.name) === 'archived')
    .map((ch) => `campaign "${ch.name}" (was ${was.get(ch.name)})`)
}

function summarize(
  current: StoredDefinition[],
  changes: Change[],
  revision: number,
  dryRun: boolean,
): ApplySummary {
  const byKey = new Map(current.map((d) => [`${d.kind}\0${d.name}`, d]))
  const s: ApplySummary = {
    revision,
    created: [],
    updated: [],
    deleted: [],
    unchanged: 0,
    dryRun,
    resumed: resumed(current, changes),
  }
  for (const ch of changes) {
    const prev = byKey.get(`${ch.kind}\0${ch.name}`)
    if (ch.spec === null) s.deleted.push(label(ch.kind, ch.name))
    else if (!prev) s.created.push(label(ch.kind, ch.name))
    else if (canonicalJson(prev.spec) !== canonicalJson(ch.spec)) s.updated.push(label(ch.kind, ch.name))
    else s.unchanged++
  }
  return s
}
