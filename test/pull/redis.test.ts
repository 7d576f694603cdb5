/** What only the Redis pull store has: the bulk script's handling of a key that is not a hash. */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { openPullStore } from '../../src/pull/open.js'
import { RECORD_PREFIX, type RedisPullStore } from '../../src/pull/redis.js'
import { serviceUrl, uniqueName } from '../helpers.js'
import { deleteRedisCollections } from './backends.js'

describe('Redis pull store', () => {
  const url = serviceUrl('RIFFLE_REDIS_URL')
  const C = uniqueName('rbulk')
  let store: RedisPullStore
  let redis: Redis

  before(async () => {
    store = (await openPullStore(url, '/nonexistent')) as RedisPullStore
    await store.prepare([{ name: C, key: 'id', fields: [{ name: 'a', type: 'string' }] }])
    redis = new Redis(url)
  })
  after(async () => {
    redis.disconnect()
    await deleteRedisCollections(url, [C])
    await store.close()
  })

  it('fails a bulk write at a key that is not a hash, keeping each record whole and listed', async () => {
    await redis.set(`${RECORD_PREFIX}${C}:k2`, 'not a hash')
    await assert.rejects(
      store.write(C, [
        { key: 'k1', set: { a: 'one' }, writer: 'test' },
        { key: 'k2', set: { a: 'two' }, writer: 'test' },
        { key: 'k3', set: { a: 'three' }, writer: 'test' },
      ]),
      /WRONGTYPE/,
    )
    assert.equal(await redis.get(`${RECORD_PREFIX}${C}:k2`), 'not a hash')
    assert.deepEqual((await store.get(C, 'k1'))?.fields, { a: 'one' })
    assert.deepEqual(
      (await store.scan(C, { limit: 10 })).records.map((r) => r.key),
      ['k1'],
    )
  })
})
