/** The three pull-store backends on the real servers, each on fresh names so runs never collide. */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import type { MongoPullStore } from '../../src/pull/mongodb.js'
import { openPullStore } from '../../src/pull/open.js'
import { KEYS_PREFIX, RECORD_PREFIX } from '../../src/pull/redis.js'
import type { PullStore } from '../../src/pull/store.js'
import { serviceUrl, tempDir } from '../helpers.js'

export interface Backend {
  name: 'sqlite' | 'mongodb' | 'redis'
  /** Opens the store; `cleanup` removes whatever the test wrote (given the collection names used). */
  open(): Promise<{ store: PullStore; cleanup: (collections: string[]) => Promise<void> }>
}

export function mongoTestUrl(): string {
  const u = new URL(serviceUrl('RIFFLE_MONGODB_URL'))
  u.pathname = `/riffle_t_${randomUUID().replace(/-/g, '').slice(0, 12)}`
  return u.toString()
}

export async function deleteRedisCollections(url: string, collections: string[]): Promise<void> {
  const r = new Redis(url)
  try {
    for (const c of collections) {
      let cursor = '0'
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${RECORD_PREFIX}${c}:*`, 'COUNT', 1000)
        cursor = next
        if (keys.length) await r.unlink(...keys)
      } while (cursor !== '0')
      await r.unlink(`${KEYS_PREFIX}${c}`)
    }
  } finally {
    r.disconnect()
  }
}

export const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    async open() {
      const tmp = tempDir('riffle-pull-')
      const store = await openPullStore('sqlite:', tmp.dir)
      return {
        store,
        cleanup: async () => {
          await store.close()
          tmp.cleanup()
        },
      }
    },
  },
  {
    name: 'mongodb',
    async open() {
      const store = await openPullStore(mongoTestUrl(), '/nonexistent')
      return {
        store,
        cleanup: async () => {
          await (store as MongoPullStore).dropDatabase()
          await store.close()
        },
      }
    },
  },
  {
    name: 'redis',
    async open() {
      const url = serviceUrl('RIFFLE_REDIS_URL')
      const store = await openPullStore(url, '/nonexistent')
      return {
        store,
        cleanup: async (collections) => {
          await deleteRedisCollections(url, collections)
          await store.close()
        },
      }
    },
  },
]
