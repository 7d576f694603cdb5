/**
 * The Redis pull store: one hash per record (`riffle:pull:<collection>:<key>`), the fields as
 * plain text, metadata in reserved `_`-prefixed hash fields; one sorted set per collection
 * (`riffle:pullkeys:<collection>`, every score 0) lists the keys for key-order scans. Each record's
 * write is atomic: one Lua script per record where the server must decide (only if newer, unset,
 * delete, TTL); plain merges, the load path, go up to 250 records to one script call, a single HSET
 * each. A batch is one pipeline.
 *
 * Client: ioredis, chosen by measurement here (pipelined writes about 155k/s against 90k/s, and
 * 500-key lookups 1.7 ms against 3.0 ms, for the official `redis` 6 client).
 */
import { Redis, ReplyError } from 'ioredis'
import type { Collection, FieldType } from '../definitions/schema.js'
import { riffleError } from '../errors.js'
import type { PullRecord, PullStore, PullWrite, ScanPage } from './store.js'
import {
  type CheckedWrite,
  checkWrites,
  compileCollection,
  type PullCollection,
  pickFields,
  unknownCollection,
} from './values.js'

export const RECORD_PREFIX = 'riffle:pull:'
export const KEYS_PREFIX = 'riffle:pullkeys:'
const SWEEP_EVERY_MS = 60_000
const SWEEP_BATCH = 1000

/*
 * KEYS: record hash, key set. ARGV: key, op (s|d), onlyIfNewer (1|0), event time or '', now,
 * writer, ttl ms (0: none), number of set pairs, the pairs, then the fields to unset.
 * Returns 1 when applied, 0 when skipped.
 */
const WRITE_SCRIPT = `
local h, z = KEYS[1], KEYS[2]
local key, op, cond, et = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, ttl, nset = tonumber(ARGV[5]), tonumber(ARGV[7]), tonumber(ARGV[8])
local meta = redis.call('HMGET', h, '_updatedAt', '_eventTime')
local exists = meta[1]
if exists and ttl > 0 and tonumber(meta[1]) + ttl <= now then
  redis.call('DEL', h)
  exists = false
  meta[2] = false
end
if cond == '1' and meta[2] and tonumber(meta[2]) > tonumber(et) then return 0 end
if op == 'd' then
  if not exists then return 0 end
  redis.call('DEL', h)
  redis.call('ZREM', z, key)
  return 1
end
local args = {'_updatedAt', ARGV[5], '_writer', ARGV[6]}
if et ~= '' then
  args[5] = '_eventTime'
  args[6] = et
end
for i = 9, 8 + 2 * nset do args[#args + 1] = ARGV[i] end
redis.call('HSET', h, unpack(args))
if #ARGV > 8 + 2 * nset then redis.call('HDEL', h, unpack(ARGV, 9 + 2 * nset, #ARGV)) end
if ttl > 0 then redis.call('PEXPIRE', h, ttl) else redis.call('PERSIST', h) end
redis.call('ZADD', z, 0, key)
return 1
`

/*
 * Plain merges (no TTL, only-if-newer, unset or delete), many records in one call: the load path.
 * KEYS: the key set, then each record's hash. ARGV, per record: the number of HSET arguments, the
 * record key, then those arguments (field, value, ..., including the metadata). Each record is one
 * HSET (atomic for the record), then PERSIST (the collection may have had a TTL once); the keys of
 * the records written join the key set, also when a record fails (WRONGTYPE), whose error is then
 * returned after the records before it. Returns the number of records written.
 */
const BULK_SCRIPT = `
local z = KEYS[1]
local a = 1
local members = {}
local failed
for r = 2, #KEYS do
  local n = tonumber(ARGV[a])
  local ok = redis.pcall('HSET', KEYS[r], unpack(ARGV, a + 2, a + 1 + n))
  if type(ok) == 'table' and ok.err then
    failed = ok
    break
  end
  redis.call('PERSIST', KEYS[r])
  members[#members + 1] = 0
  members[#members + 1] = ARGV[a + 1]
  a = a + 2 + n
end
for i = 1, #members, 1000 do
  redis.call('ZADD', z, unpack(members, i, math.min(i + 999, #members)))
end
if failed then return failed end
return #members / 2
`

/**
 * Records per bulk script call: large enough that the client builds few commands, small enough
 * that one call holds Redis for about a millisecond at most.
 */
const BULK_RECORDS = 250

type Writer = Redis & {
  riffleWrite(hash: string, keys: string, ...args: Array<string | number>): Promise<number>
}

function encode(v: unknown): string {
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  return JSON.stringify(v)
}

function decode(type: FieldType | undefined, s: string): unknown {
  switch (type) {
    case 'number':
    case 'integer': {
      const n = Number(s)
      return Number.isNaN(n) ? s : n
    }
    case 'boolean':
      return s === 'true'
    case 'object':
    case 'array':
      try {
        return JSON.parse(s)
      } catch {
        return s
      }
    default:
      return s
  }
}

function isConnectionError(e: unknown): boolean {
  return !(e instanceof ReplyError)
}

export class RedisPullStore implements PullStore {
  readonly kind = 'redis'
  readonly description: string
  readonly #redis: Writer
  #collections = new Map<string, PullCollection>()
  #sweepTimer: NodeJS.Timeout | undefined
  readonly #sweepCursor = new Map<string, string>()

  private constructor(redis: Redis, description: string) {
    this.#redis = redis as Writer
    this.description = description
    this.#redis.defineCommand('riffleWrite', { numberOfKeys: 2, lua: WRITE_SCRIPT })
    this.#redis.defineCommand('riffleBulk', { lua: BULK_SCRIPT })
    this.#sweepTimer = setInterval(() => void this.sweep().catch(() => {}), SWEEP_EVERY_MS)
    this.#sweepTimer.unref()
  }

  /** Connects; while Redis is down, commands fail at once with RIFFLE_STORE_UNAVAILABLE and the client keeps reconnecting. */
  static async open(url: string): Promise<RedisPullStore> {
    const redis = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2_000,
      commandTimeout: 5_000,
      retryStrategy: (times) => Math.min(times * 100, 1_000),
    })
    redis.on('error', () => {}) // surfaced on the next command instead
    const store = new RedisPullStore(redis, redactUrl(url))
    try {
      await redis.connect()
    } catch {
      // Down at start-up: readiness reports it; the client keeps trying.
    }
    return store
  }

  #collection(name: string): PullCollection {
    const c = this.#collections.get(name)
    if (!c) throw unknownCollection(name)
    return c
  }

  #wrap(e: unknown): unknown {
    if (isConnectionError(e)) {
      const msg = e instanceof Error ? e.message : String(e)
      return riffleError('RIFFLE_STORE_UNAVAILABLE', `pull store ${this.description}: ${msg}`, { cause: e })
    }
    return e
  }

  async prepare(collections: Collection[]): Promise<void> {
    this.#collections = new Map(collections.map((c) => [c.name, compileCollection(c)]))
  }

  #toRecord(
    c: PullCollection,
    key: string,
    h: Record<string, string>,
    now: number,
    fields?: string[],
  ): PullRecord | undefined {
    const updated = h._updatedAt
    if (updated === undefined) return undefined
    const updatedAt = Number(updated)
    if (c.ttlMs !== undefined && updatedAt + c.ttlMs <= now) return undefined
    const out: Record<string, unknown> = {}
    for (const f in h) {
      if (f.charCodeAt(0) === 95 /* _ */) continue
      out[f] = decode(c.fields.get(f), h[f]!)
    }
    const rec: PullRecord = {
      key,
      fields: pickFields(out, fields),
      updatedAt: new Date(updatedAt).toISOString(),
      writer: h._writer ?? '',
    }
    if (h._eventTime !== undefined) rec.eventTime = Number(h._eventTime)
    return rec
  }

  async get(collection: string, key: string, fields?: string[]): Promise<PullRecord | undefined> {
    const c = this.#collection(collection)
    let h: Record<string, string>
    try {
      h = await this.#redis.hgetall(RECORD_PREFIX + collection + ':' + key)
    } catch (e) {
      throw this.#wrap(e)
    }
    return this.#toRecord(c, key, h, Date.now(), fields)
  }

  async getMany(collection: string, keys: string[]): Promise<Array<PullRecord | undefined>> {
    const c = this.#collection(collection)
    if (keys.length === 0) return []
    const p = this.#redis.pipeline()
    const prefix = RECORD_PREFIX + collection + ':'
    for (const k of keys) p.hgetall(prefix + k)
    let results: Array<[Error | null, unknown]> | null
    try {
      results = await p.exec()
    } catch (e) {
      throw this.#wrap(e)
    }
    if (!results) throw riffleError('RIFFLE_STORE_UNAVAILABLE', `pull store ${this.description}: no reply`)
    const now = Date.now()
    const out = new Array<PullRecord | undefined>(keys.length)
    for (let i = 0; i < keys.length; i++) {
      const [err, h] = results[i]!
      if (err) throw this.#wrap(err)
      out[i] = this.#toRecord(c, keys[i]!, h as Record<string, string>, now)
    }
    return out
  }

  async write(collection: string, writes: PullWrite[]): Promise<{ applied: number; skipped: number }> {
    const c = this.#collection(collection)
    const checked = checkWrites(c, writes)
    if (checked.length === 0) return { applied: 0, skipped: 0 }
    const now = String(Date.now())
    const ttl = c.ttlMs ?? 0
    const prefix = RECORD_PREFIX + collection + ':'
    const zkey = KEYS_PREFIX + collection
    const p = this.#redis.pipeline() as unknown as {
      riffleWrite(...args: Array<string | number>): void
      riffleBulk(numberOfKeys: number, keys: string[], args: string[]): void
      exec(): Promise<Array<[Error | null, unknown]> | null>
    }
    // Every command answers how many records it applied: a per-record script 1 or 0, a bulk script its count.
    let keys: string[] = [zkey]
    let args: string[] = []
    const flushBulk = () => {
      if (keys.length === 1) return
      p.riffleBulk(keys.length, keys, args)
      keys = [zkey]
      args = []
    }
    for (const w of checked) {
      if (ttl === 0 && !w.delete && !w.onlyIfNewer && w.unset.length === 0) {
        // A plain merge needs no decision on the server: it joins the run of records for one bulk
        // script call, in order.
        const at = args.length
        args.push('', w.key)
        for (const f of w.setNames) args.push(f, encode(w.set[f]))
        args.push('_updatedAt', now, '_writer', w.writer)
        if (w.eventTime !== undefined) args.push('_eventTime', String(w.eventTime))
        args[at] = String(args.length - at - 2)
        keys.push(prefix + w.key)
        if (keys.length > BULK_RECORDS) flushBulk()
        continue
      }
      flushBulk()
      p.riffleWrite(prefix + w.key, zkey, ...this.#args(w, now, ttl))
    }
    flushBulk()
    let results: Array<[Error | null, unknown]> | null
    try {
      results = await p.exec()
    } catch (e) {
      throw this.#wrap(e)
    }
    if (!results) throw riffleError('RIFFLE_STORE_UNAVAILABLE', `pull store ${this.description}: no reply`)
    let applied = 0
    for (let i = 0; i < results.length; i++) {
      const [err, r] = results[i]!
      if (err) throw this.#wrap(err)
      applied += Number(r)
    }
    return { applied, skipped: checked.length - applied }
  }

  #args(w: CheckedWrite, now: string, ttl: number): Array<string | number> {
    const args: Array<string | number> = [
      w.key,
      w.delete ? 'd' : 's',
      w.onlyIfNewer ? '1' : '0',
      w.eventTime === undefined ? '' : String(w.eventTime),
      now,
      w.writer,
      ttl,
      w.setNames.length,
    ]
    for (const f of w.setNames) args.push(f, encode(w.set[f]))
    for (const f of w.unset) args.push(f)
    return args
  }

  async scan(collection: string, opts: { after?: string; limit: number }): Promise<ScanPage> {
    const c = this.#collection(collection)
    const zkey = KEYS_PREFIX + collection
    const prefix = RECORD_PREFIX + collection + ':'
    const records: PullRecord[] = []
    let after = opts.after
    try {
      for (;;) {
        const want = opts.limit - records.length
        const keys = await this.#redis.zrangebylex(
          zkey,
          after === undefined || after === '' ? '-' : `(${after}`,
          '+',
          'LIMIT',
          0,
          want + 1,
        )
        const page = keys.slice(0, want)
        const p = this.#redis.pipeline()
        for (const k of page) p.hgetall(prefix + k)
        const results = (await p.exec()) ?? []
        const now = Date.now()
        const gone: string[] = []
        page.forEach((k, i) => {
          const rec = this.#toRecord(c, k, results[i]?.[1] as Record<string, string>, now)
          if (rec) records.push(rec)
          else gone.push(k)
        })
        // Hashes that Redis expired leave their key in the set; drop it now.
        if (gone.length) await this.#redis.zrem(zkey, ...gone)
        after = page[page.length - 1]
        if (keys.length <= want) return { records, next: undefined }
        if (records.length >= opts.limit) return { records, next: after }
      }
    } catch (e) {
      throw this.#wrap(e)
    }
  }

  /** Drops keys of expired records from the key sets of collections with a TTL, a batch per run. */
  async sweep(): Promise<number> {
    let removed = 0
    for (const c of this.#collections.values()) {
      if (c.ttlMs === undefined) continue
      const zkey = KEYS_PREFIX + c.name
      const from = this.#sweepCursor.get(c.name)
      const keys = await this.#redis.zrangebylex(zkey, from ? `(${from}` : '-', '+', 'LIMIT', 0, SWEEP_BATCH)
      const p = this.#redis.pipeline()
      for (const k of keys) p.exists(RECORD_PREFIX + c.name + ':' + k)
      const results = (await p.exec()) ?? []
      const gone = keys.filter((_, i) => results[i]?.[1] === 0)
      if (gone.length) removed += await this.#redis.zrem(zkey, ...gone)
      if (keys.length < SWEEP_BATCH) this.#sweepCursor.delete(c.name)
      else this.#sweepCursor.set(c.name, keys[keys.length - 1]!)
    }
    return removed
  }

  async ping(): Promise<void> {
    try {
      await this.#redis.ping()
    } catch (e) {
      throw this.#wrap(e)
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#sweepTimer)
    try {
      await this.#redis.quit()
    } catch {
      this.#redis.disconnect()
    }
  }
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@')
  }
}
