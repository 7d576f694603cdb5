/**
 * API keys with scopes, stored hashed. A key reads `rfl_<id>_<secret>`; only SHA-256 of the secret
 * is stored (the secret is 256 random bits, so a slow hash adds nothing). Verified keys are cached
 * for a few seconds so that the Pull API does not hit the database on every request.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { SqlDatabase } from '../db/sql.js'
import { riffleError } from '../errors.js'

export const SCOPE_PATTERN = /^(admin|ingest|pull:read:(\*|[A-Za-z0-9][A-Za-z0-9_-]{0,99}))$/

export interface ApiKey {
  id: string
  name: string | undefined
  scopes: string[]
  createdAt: string
  revokedAt: string | undefined
}

export interface Principal {
  keyId: string
  /** The key's name, given when it was created. */
  name?: string | undefined
  scopes: ReadonlySet<string>
}

const MIGRATIONS = [
  {
    id: '001-api-keys',
    sql: `create table if not exists api_keys (
  id text primary key,
  hash text not null,
  name text,
  scopes text not null,
  created_at bigint not null,
  revoked_at bigint
)`,
  },
]

const CACHE_MS = 5_000

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/** Whether a principal holds a scope; `admin` holds every scope, `pull:read:*` every collection. */
export function hasScope(p: Principal, scope: string): boolean {
  if (p.scopes.has(scope) || p.scopes.has('admin')) return true
  return scope.startsWith('pull:read:') && p.scopes.has('pull:read:*')
}

export class KeyStore {
  readonly #cache = new Map<string, { principal: Principal | undefined; until: number }>()

  private constructor(private readonly db: SqlDatabase) {}

  static async open(db: SqlDatabase): Promise<KeyStore> {
    await db.migrate('keys', MIGRATIONS)
    return new KeyStore(db)
  }

  /** Creates a key; the returned secret is shown once and never stored. */
  async create(scopes: string[], name?: string): Promise<{ key: string; apiKey: ApiKey }> {
    if (scopes.length === 0) throw riffleError('RIFFLE_BAD_REQUEST', 'a key needs at least one --scope')
    for (const s of scopes) {
      if (!SCOPE_PATTERN.test(s)) {
        throw riffleError(
          'RIFFLE_BAD_REQUEST',
          `unknown scope "${s}": use admin, ingest, pull:read:<collection> or pull:read:*`,
        )
      }
    }
    const id = randomBytes(6).toString('hex')
    const secret = randomBytes(32).toString('base64url')
    const now = Date.now()
    const unique = [...new Set(scopes)]
    await this.db.run('insert into api_keys (id, hash, name, scopes, created_at) values (?, ?, ?, ?, ?)', [
      id,
      sha256(secret).toString('hex'),
      name ?? null,
      JSON.stringify(unique),
      now,
    ])
    return {
      key: `rfl_${id}_${secret}`,
      apiKey: { id, name, scopes: unique, createdAt: new Date(now).toISOString(), revokedAt: undefined },
    }
  }

  async list(): Promise<ApiKey[]> {
    const rows = await this.db.all<{
      id: string
      name: string | null
      scopes: string
      created_at: number
      revoked_at: number | null
    }>('select id, name, scopes, created_at, revoked_at from api_keys order by created_at')
    return rows.map((r) => ({
      id: r.id,
      name: r.name ?? undefined,
      scopes: JSON.parse(r.scopes) as string[],
      createdAt: new Date(Number(r.created_at)).toISOString(),
      revokedAt: r.revoked_at === null ? undefined : new Date(Number(r.revoked_at)).toISOString(),
    }))
  }

  async revoke(id: string): Promise<void> {
    const r = await this.db.run('update api_keys set revoked_at = ? where id = ? and revoked_at is null', [
      Date.now(),
      id,
    ])
    if (r.changes === 0) throw riffleError('RIFFLE_NOT_FOUND', `no active key with id "${id}"`)
    this.#cache.clear()
  }

  /**
   * The cached verdict on a presented key, without waiting: `{ principal }` (undefined when the key
   * is not valid) while the verdict is fresh, else undefined and the caller must verify().
   */
  cached(presented: string): { principal: Principal | undefined } | undefined {
    const cached = this.#cache.get(presented)
    return cached && cached.until > Date.now() ? cached : undefined
  }

  /**
   * The principal of a presented key, or undefined when the key is unknown, malformed or revoked.
   * Verdicts are cached for 5 s: a key revoked in this process stops working at once, one revoked
   * by another process sharing the database within 5 s.
   */
  async verify(presented: string): Promise<Principal | undefined> {
    const now = Date.now()
    const cached = this.#cache.get(presented)
    if (cached && cached.until > now) return cached.principal
    const principal = await this.#lookup(presented)
    if (this.#cache.size > 10_000) this.#cache.clear()
    this.#cache.set(presented, { principal, until: now + CACHE_MS })
    return principal
  }

  async #lookup(presented: string): Promise<Principal | undefined> {
    const m = /^rfl_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/.exec(presented)
    if (!m) return undefined
    const row = await this.db.get<{
      hash: string
      name: string | null
      scopes: string
      revoked_at: number | null
    }>('select hash, name, scopes, revoked_at from api_keys where id = ?', [m[1]])
    if (!row || row.revoked_at !== null) return undefined
    const expected = Buffer.from(row.hash, 'hex')
    const actual = sha256(m[2]!)
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined
    return {
      keyId: m[1]!,
      name: row.name ?? undefined,
      scopes: new Set(JSON.parse(row.scopes) as string[]),
    }
  }
}
