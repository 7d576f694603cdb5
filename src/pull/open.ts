import { join } from 'node:path'
import { riffleError } from '../errors.js'
import type { PullStore } from './store.js'

/**
 * Opens the pull store named by RIFFLE_PULLSTORE_URL: `sqlite:` (the file `<dataDir>/pull.db`),
 * `sqlite:PATH`, `mongodb://host/db` (or `mongodb+srv:`), `redis://…` (or `rediss:`).
 * Each adapter is loaded only when used, so the embedded default needs no other driver.
 */
export async function openPullStore(url: string, dataDir: string): Promise<PullStore> {
  if (url.startsWith('sqlite:')) {
    const { SqlitePullStore } = await import('./sqlite.js')
    const rest = url.slice('sqlite:'.length)
    return new SqlitePullStore(rest === '' ? join(dataDir, 'pull.db') : rest)
  }
  if (url.startsWith('mongodb://') || url.startsWith('mongodb+srv://')) {
    const { MongoPullStore } = await import('./mongodb.js')
    return MongoPullStore.open(url)
  }
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const { RedisPullStore } = await import('./redis.js')
    return RedisPullStore.open(url)
  }
  throw riffleError('RIFFLE_CONFIG', `RIFFLE_PULLSTORE_URL: unsupported scheme in "${url.split(':')[0]}:…"`)
}
