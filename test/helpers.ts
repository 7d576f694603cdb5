/** Shared test fixtures. Tests run against the real servers that scripts/services.sh starts. */

import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/api/app.js'
import { createMetricsRegistry } from '../src/api/routes/health.js'
import { loadConfig } from '../src/config.js'
import { createLogger } from '../src/log.js'
import { openRiffle, type Riffle } from '../src/runtime.js'

/** A server URL from the environment that `npm test` sets; a missing one fails the test, never skips it. */
export function serviceUrl(
  name: 'RIFFLE_KAFKA_BROKERS' | 'RIFFLE_REDIS_URL' | 'RIFFLE_POSTGRES_URL' | 'RIFFLE_MONGODB_URL',
): string {
  const v = process.env[name]
  if (!v)
    throw new Error(
      `${name} is not set: run the tests with \`npm test\`, which starts the servers (scripts/services.sh up)`,
    )
  return v
}

export function kafkaBrokers(): string[] {
  return serviceUrl('RIFFLE_KAFKA_BROKERS').split(',')
}

export function tempDir(prefix = 'riffle-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`
}

/**
 * A fresh PostgreSQL database for one test file, so tests never see each other's tables.
 * Returns its URL and a function that drops it.
 */
/**
 * A fresh PostgreSQL database, owned by a fresh role that is not a superuser (as a data store or
 * Riffle database user should be). `superuserUrl` reaches the same database as the services'
 * superuser.
 */
export async function freshPostgresDatabase(): Promise<{
  url: string
  superuserUrl: string
  drop: () => Promise<void>
}> {
  const pg = (await import('pg')).default
  const base = serviceUrl('RIFFLE_POSTGRES_URL')
  const name = `t_${randomUUID().replace(/-/g, '').slice(0, 16)}`
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  await admin.query(`create role ${name} login nosuperuser password '${name}'`)
  await admin.query(`create database ${name} owner ${name}`)
  await admin.end()
  const u = new URL(base)
  u.pathname = `/${name}`
  const superuserUrl = u.toString()
  u.username = name
  u.password = name
  return {
    url: u.toString(),
    superuserUrl,
    drop: async () => {
      const c = new pg.Client({ connectionString: base })
      await c.connect()
      await c.query(`drop database if exists ${name} with (force)`)
      await c.query(`drop role if exists ${name}`)
      await c.end()
    },
  }
}

export interface TestApp {
  app: FastifyInstance
  riffle: Riffle
  adminKey: string
  close: () => Promise<void>
}

/** Riffle's HTTP app on a fresh data directory (SQLite), with an admin key, driven by inject(). */
export async function startTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const tmp = tempDir()
  const config = loadConfig({
    RIFFLE_DATA_DIR: tmp.dir,
    RIFFLE_KAFKA_BROKERS: process.env.RIFFLE_KAFKA_BROKERS ?? '',
    ...env,
  })
  const log = createLogger('silent')
  const riffle = await openRiffle(config, log)
  const { key } = await riffle.keys.create(['admin'], 'test admin')
  const brokers = config.kafkaBrokers
  const app = await buildApp({
    log,
    defs: riffle.defs,
    keys: riffle.keys,
    metrics: createMetricsRegistry(),
    readiness: [{ name: 'database', check: () => riffle.db.ping() }],
    brokers: async () => {
      if (!brokers) throw new Error('RIFFLE_KAFKA_BROKERS is not set')
      return brokers
    },
    version: 'test',
    history: riffle.history,
    pull: riffle.pull,
  })
  await app.ready()
  return {
    app,
    riffle,
    adminKey: key,
    close: async () => {
      await app.close()
      await riffle.close()
      tmp.cleanup()
    },
  }
}

export function bearer(key: string): { authorization: string } {
  return { authorization: `Bearer ${key}` }
}
