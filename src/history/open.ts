/**
 * Where the output history lives. With the embedded default (`RIFFLE_DATABASE_URL` unset or
 * `sqlite:`) it gets its own SQLite file, `<dataDir>/history.db`: SQLite lets one writer at a time
 * into a file, and the history's heavy appends should never hold up a definitions change or a key
 * check. With `sqlite:PATH` or PostgreSQL it shares Riffle's database.
 */
import type { Config } from '../config.js'
import { openDatabase, type SqlDatabase } from '../db/sql.js'
import type { Logger } from '../log.js'
import { HistoryStore } from './store.js'

export async function openHistory(
  config: Config,
  db: SqlDatabase,
  log?: Logger,
): Promise<{ store: HistoryStore; close: () => Promise<void> }> {
  const watch = (store: HistoryStore) => {
    store.onIndexerError((err) =>
      log?.error({ err }, 'the output history customer index worker failed; it restarts on a later append'),
    )
    return store
  }
  if (config.databaseUrl !== 'sqlite:') {
    const store = watch(await HistoryStore.open(db))
    return { store, close: () => store.close() }
  }
  const own = await openDatabase('sqlite:', config.dataDir, 'history.db')
  try {
    const store = watch(await HistoryStore.open(own))
    return {
      store,
      close: async () => {
        await store.close()
        await own.close()
      },
    }
  } catch (e) {
    await own.close().catch(() => {})
    throw e
  }
}
