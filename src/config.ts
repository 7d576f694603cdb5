import { createHash } from 'node:crypto'
import { hostname } from 'node:os'
import { isAbsolute, resolve } from 'node:path'
import { riffleError } from './errors.js'

/** Riffle's settings, read once at start-up from the environment and command-line flags. */
export interface Config {
  /** HTTP port of the API, the Pull API and the UI (`RIFFLE_PORT`, default 8080). */
  port: number
  /** Address the HTTP server binds to (`RIFFLE_HOST`, default 127.0.0.1). */
  host: string
  /** Data directory for the embedded stores (`RIFFLE_DATA_DIR`, default `./.riffle/data`). */
  dataDir: string
  /** Kafka bootstrap brokers (`RIFFLE_KAFKA_BROKERS`); unset: the local single-node broker. */
  kafkaBrokers: string[] | undefined
  /** Pull Marketing database (`RIFFLE_PULLSTORE_URL`): `sqlite:` (default), `mongodb://…`, `redis://…`. */
  pullStoreUrl: string
  /** Definitions, history and runs (`RIFFLE_DATABASE_URL`): SQLite under the data dir by default, or `postgres://…`. */
  databaseUrl: string
  /** Analytical data store (`RIFFLE_DATASTORE_URL`): DuckDB under the data dir by default, or `postgres://…`. */
  datastoreUrl: string
  /**
   * Let audience SQL run as a PostgreSQL data store user that can read or write files on the
   * database server (a superuser, or a member of pg_read_server_files, pg_write_server_files or
   * pg_execute_server_program): `RIFFLE_DATASTORE_ALLOW_FILE_ACCESS`, default false (refused).
   */
  datastoreAllowFileAccess: boolean
  /** Log level (`RIFFLE_LOG_LEVEL`, default info). */
  logLevel: string
  /** Engine settings: consumer group, process id, webhook allow-list, batch size. */
  engine: EngineConfig
  /**
   * Run the scheduler in `riffle start` (`RIFFLE_SCHEDULER`, default on; `off` for a process that
   * neither fires schedules, nor resumes interrupted runs, nor starts manual runs).
   */
  schedulerEnabled: boolean
  /**
   * Days of output history to keep (`RIFFLE_HISTORY_RETENTION_DAYS`, default 90). Older records are
   * purged once every registered export consumer has taken them.
   */
  historyRetentionDays: number
  /** Kafka topic that mirrors every appended activation (`RIFFLE_HISTORY_TOPIC`); unset: no mirror. */
  historyTopic: string | undefined
}

export interface EngineConfig {
  /** Consumer group shared by every engine process (`RIFFLE_ENGINE_GROUP`, default riffle). */
  group: string
  /**
   * This process's stable id (`RIFFLE_ENGINE_ID`); its transactional id derives from it, so a
   * restarted process fences its own unfinished transaction. Default: host name + data directory.
   */
  id: string
  /** Private webhook targets allowed (`RIFFLE_WEBHOOK_ALLOW`): addresses, CIDR ranges, host names. */
  webhookAllow: string[]
  /** Most messages per batch (`RIFFLE_ENGINE_BATCH`, default 5000, at most 10000). */
  batchMax: number
  /** Run the engine in `riffle start` (`RIFFLE_ENGINE`, default on; `off` for an API-only process). */
  enabled: boolean
  /** Consumer session timeout (`RIFFLE_ENGINE_SESSION_TIMEOUT_MS`, default 10000; the broker allows 6000 or more). */
  sessionTimeoutMs: number
}

export interface ConfigOverrides {
  port?: number | string | undefined
  dataDir?: string | undefined
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

function bad(setting: string, message: string): never {
  throw riffleError('RIFFLE_CONFIG', `${setting}: ${message}`)
}

function parsePort(setting: string, raw: string | number): number {
  const n = typeof raw === 'number' ? raw : Number(raw)
  if (!Number.isInteger(n) || n < 0 || n > 65535) bad(setting, `must be a port number 0-65535, got "${raw}"`)
  return n
}

function checkUrl(setting: string, raw: string, schemes: string[]): string {
  const scheme = raw.split(':')[0] ?? ''
  if (!schemes.includes(scheme))
    bad(setting, `scheme "${scheme}:" is not supported; use one of ${schemes.map((s) => `${s}:`).join(', ')}`)
  return raw
}

/** Reads and validates the configuration; a bad setting throws an error that names it. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): Config {
  const dataDirRaw = overrides.dataDir ?? env.RIFFLE_DATA_DIR ?? './.riffle/data'
  const dataDir = isAbsolute(dataDirRaw) ? dataDirRaw : resolve(process.cwd(), dataDirRaw)
  const port = parsePort(
    overrides.port !== undefined ? '--port' : 'RIFFLE_PORT',
    overrides.port ?? env.RIFFLE_PORT ?? 8080,
  )

  let kafkaBrokers: string[] | undefined
  if (env.RIFFLE_KAFKA_BROKERS !== undefined && env.RIFFLE_KAFKA_BROKERS.trim() !== '') {
    kafkaBrokers = env.RIFFLE_KAFKA_BROKERS.split(',').map((s) => s.trim())
    for (const b of kafkaBrokers) {
      if (!/^[^\s:]+:\d+$/.test(b)) bad('RIFFLE_KAFKA_BROKERS', `"${b}" is not host:port`)
    }
  }
  const logLevel = env.RIFFLE_LOG_LEVEL ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) bad('RIFFLE_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`)

  const retentionRaw = env.RIFFLE_HISTORY_RETENTION_DAYS?.trim() || '90'
  const historyRetentionDays = Number(retentionRaw)
  if (!/^\d+$/.test(retentionRaw) || historyRetentionDays < 1 || historyRetentionDays > 36_500)
    bad(
      'RIFFLE_HISTORY_RETENTION_DAYS',
      `must be a whole number of days from 1 to 36500, got "${retentionRaw}"`,
    )
  const historyTopic = env.RIFFLE_HISTORY_TOPIC?.trim() || undefined
  if (historyTopic !== undefined && !/^[A-Za-z0-9._-]{1,249}$/.test(historyTopic))
    bad('RIFFLE_HISTORY_TOPIC', `"${historyTopic}" is not a valid Kafka topic name`)

  const batchRaw = env.RIFFLE_ENGINE_BATCH?.trim() || '5000'
  if (!/^\d+$/.test(batchRaw) || Number(batchRaw) < 1 || Number(batchRaw) > 10_000) {
    bad('RIFFLE_ENGINE_BATCH', `must be a whole number from 1 to 10000, got "${batchRaw}"`)
  }
  const engineId =
    env.RIFFLE_ENGINE_ID?.trim() ||
    `${hostname()}-${createHash('sha256').update(dataDir).digest('hex').slice(0, 8)}`
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(engineId))
    bad('RIFFLE_ENGINE_ID', `"${engineId}" may use letters, digits, ".", "_" and "-"`)
  const engineSwitch = (env.RIFFLE_ENGINE ?? 'on').trim().toLowerCase()
  if (!['on', 'off', 'true', 'false', '1', '0'].includes(engineSwitch))
    bad('RIFFLE_ENGINE', 'must be on or off')
  const schedulerSwitch = (env.RIFFLE_SCHEDULER ?? 'on').trim().toLowerCase()
  if (!['on', 'off', 'true', 'false', '1', '0'].includes(schedulerSwitch))
    bad('RIFFLE_SCHEDULER', `must be on or off, got "${env.RIFFLE_SCHEDULER}"`)
  const fileAccess = (env.RIFFLE_DATASTORE_ALLOW_FILE_ACCESS ?? 'false').trim().toLowerCase()
  if (!['true', 'false', '1', '0', 'on', 'off'].includes(fileAccess))
    bad(
      'RIFFLE_DATASTORE_ALLOW_FILE_ACCESS',
      `must be true or false, got "${env.RIFFLE_DATASTORE_ALLOW_FILE_ACCESS}"`,
    )
  const sessionRaw = env.RIFFLE_ENGINE_SESSION_TIMEOUT_MS?.trim() || '10000'
  if (!/^\d+$/.test(sessionRaw) || Number(sessionRaw) < 1000)
    bad('RIFFLE_ENGINE_SESSION_TIMEOUT_MS', `must be milliseconds, at least 1000, got "${sessionRaw}"`)
  const engine: EngineConfig = {
    sessionTimeoutMs: Number(sessionRaw),
    group: env.RIFFLE_ENGINE_GROUP?.trim() || 'riffle',
    id: engineId,
    webhookAllow: (env.RIFFLE_WEBHOOK_ALLOW ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    batchMax: Number(batchRaw),
    enabled: ['on', 'true', '1'].includes(engineSwitch),
  }

  return {
    engine,
    schedulerEnabled: ['on', 'true', '1'].includes(schedulerSwitch),
    port,
    host: env.RIFFLE_HOST ?? '127.0.0.1',
    dataDir,
    kafkaBrokers,
    pullStoreUrl: checkUrl('RIFFLE_PULLSTORE_URL', env.RIFFLE_PULLSTORE_URL || 'sqlite:', [
      'sqlite',
      'mongodb',
      'mongodb+srv',
      'redis',
      'rediss',
    ]),
    databaseUrl: checkUrl('RIFFLE_DATABASE_URL', env.RIFFLE_DATABASE_URL || 'sqlite:', [
      'sqlite',
      'postgres',
      'postgresql',
    ]),
    datastoreUrl: checkUrl('RIFFLE_DATASTORE_URL', env.RIFFLE_DATASTORE_URL || 'duckdb:', [
      'duckdb',
      'postgres',
      'postgresql',
    ]),
    datastoreAllowFileAccess: ['true', '1', 'on'].includes(fileAccess),
    logLevel,
    historyRetentionDays,
    historyTopic,
  }
}
