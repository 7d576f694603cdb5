/** The Riffle HTTP API, as the UI uses it: bearer key from storage, JSON errors as ApiError. */

const KEY = 'riffle.key'

export function storedKey(): string | null {
  return localStorage.getItem(KEY)
}
export function storeKey(key: string | null): void {
  if (key) localStorage.setItem(KEY, key)
  else localStorage.removeItem(KEY)
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export async function api<T = any>(
  path: string,
  init: { method?: string; body?: unknown; key?: string } = {},
): Promise<T> {
  const key = init.key ?? storedKey()
  const headers: Record<string, string> = {}
  if (key) headers.authorization = `Bearer ${key}`
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  const text = await res.text()
  let json: any
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  if (!res.ok) {
    const e = json?.error
    throw new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? (text || res.statusText))
  }
  return (json ?? text) as T
}

export const enc = encodeURIComponent

export interface Field {
  name: string
  type: string
  required?: boolean
  path?: string
  description?: string
}
export interface StreamDef {
  name: string
  topic: string
  key: string
  time?: string
  dlq?: string
  format?: 'json'
  description?: string
  fields: Field[]
}
export interface CollectionDef {
  name: string
  key: string
  fields: Field[]
  description?: string
}
/** A data store table, as GET /api/v1/datastore/tables lists it. */
export interface ColumnInfo {
  name: string
  type: string
  kind: string
}
export interface TableInfo {
  name: string
  columns: ColumnInfo[]
}
export interface Versioned<T> {
  kind: string
  name: string
  version: number
  updatedAt: string
  updatedBy: string
  status?: string
  definition: T | null
}
export interface Activation {
  seq?: number
  id: string
  campaign: string
  campaignVersion: number
  cell: string
  customerKey: string
  source:
    | { kind: 'stream'; topic: string; partition: number; offset: string }
    | { kind: 'run'; runId: string }
  status: string
  eventTime: string | null
  outputTime: string
  content: Record<string, unknown>
  deliveries: Record<string, { status: string; detail?: string }>
  reason?: string
}
export interface Issue {
  path: string
  message: string
  line?: number
  column?: number
  /** Where in the expression or template the problem is (offsets 0-based, line and column 1-based). */
  span?: { start: number; end: number; line: number; column: number }
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.message} (${e.code})`
  return e instanceof Error ? e.message : String(e)
}
