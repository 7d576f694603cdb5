/**
 * Wires Riffle's services from the configuration. Shared by the CLI commands and `riffle start`,
 * so that every transport sees the same services.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { KeyStore } from './auth/keys.js'
import type { Config } from './config.js'
import { openDatabase, type SqlDatabase } from './db/sql.js'
import { DefinitionsService } from './definitions/service.js'
import { DefinitionsStore } from './definitions/store.js'
import { riffleError } from './errors.js'
import { openHistory } from './history/open.js'
import type { HistoryStore } from './history/store.js'
import type { Logger } from './log.js'
import { openPullStore } from './pull/open.js'
import type { PullStore } from './pull/store.js'

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string })
      .version
  } catch {
    return '0.0.0'
  }
}

export interface Riffle {
  config: Config
  log: Logger
  db: SqlDatabase
  defs: DefinitionsService
  keys: KeyStore
  /** The output history: every activation, for queries, exports and frequency caps. */
  history: HistoryStore
  /** The Pull Marketing database (RIFFLE_PULLSTORE_URL). */
  pull: PullStore
  close(): Promise<void>
}

export async function openRiffle(config: Config, log: Logger): Promise<Riffle> {
  const db = await openDatabase(config.databaseUrl, config.dataDir)
  try {
    const store = await DefinitionsStore.open(db)
    const keys = await KeyStore.open(db)
    const defs = new DefinitionsService(store)
    const history = await openHistory(config, db, log)
    const pull = await openPullStore(config.pullStoreUrl, config.dataDir)
    await pull.prepare((await defs.snapshot()).definitions.collections)
    return {
      config,
      log,
      db,
      defs,
      keys,
      history: history.store,
      pull,
      close: async () => {
        await pull.close()
        await history.close()
        await db.close()
      },
    }
  } catch (e) {
    await db.close().catch(() => {})
    throw e
  }
}

const run = promisify(execFile)

/**
 * The Kafka brokers to use: RIFFLE_KAFKA_BROKERS when set; otherwise the local single-node broker,
 * started through scripts/services.sh when it is not running yet.
 */
export async function resolveKafkaBrokers(config: Config, log: Logger): Promise<string[]> {
  if (config.kafkaBrokers) return config.kafkaBrokers
  const script = join(PACKAGE_ROOT, 'scripts', 'services.sh')
  log.info(
    'RIFFLE_KAFKA_BROKERS is not set: starting the local single-node Kafka broker (scripts/services.sh up kafka)',
  )
  try {
    await run('bash', [script, 'up', 'kafka'], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 })
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string }
    throw riffleError(
      'RIFFLE_KAFKA_UNAVAILABLE',
      `could not start the local Kafka broker: ${(err.stderr || err.stdout || err.message).trim().split('\n').slice(-5).join('\n')}`,
      { cause: e },
    )
  }
  const env = await readFile(join(PACKAGE_ROOT, '.riffle', 'services.env'), 'utf8')
  const m = /RIFFLE_KAFKA_BROKERS=(\S+)/.exec(env)
  if (!m)
    throw riffleError('RIFFLE_KAFKA_UNAVAILABLE', 'scripts/services.sh did not report RIFFLE_KAFKA_BROKERS')
  return m[1]!.split(',')
}
