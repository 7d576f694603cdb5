/**
 * A pull store that goes down: the Pull API answers 503 RIFFLE_STORE_UNAVAILABLE at once, stays
 * up, and recovers by itself when the store returns. Uses private servers on free ports (Redis,
 * and FerretDB for the MongoDB adapter), killed with SIGKILL and restarted on the same port.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { isRiffleError } from '../../src/errors.js'
import { openPullStore } from '../../src/pull/open.js'
import { bearer, startTestApp, type TestApp, tempDir } from '../helpers.js'

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  )
  const deadline = Date.now() + 10_000
  for (;;) {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null })
    r.on('error', () => {})
    try {
      await r.connect()
      await r.ping()
      r.disconnect()
      return child
    } catch {
      r.disconnect()
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`)
      await sleep(50)
    }
  }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

describe('pull store outage', () => {
  let t: TestApp
  let redis: ChildProcess
  let port: number
  let pullKey: string
  const tmp = tempDir('riffle-redis-')

  before(async () => {
    port = await freePort()
    redis = await startRedis(port, tmp.dir)
    t = await startTestApp({ RIFFLE_PULLSTORE_URL: `redis://127.0.0.1:${port}` })
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/collections',
      headers: bearer(t.adminKey),
      payload: { name: 'profile', key: 'customer_id', fields: [{ name: 'segment', type: 'string' }] },
    })
    assert.equal(res.statusCode, 201, res.body)
    pullKey = (await t.riffle.keys.create(['pull:read:profile'])).key
  })
  after(async () => {
    await t?.close()
    if (redis) await kill(redis)
    tmp.cleanup()
  })

  const get = () => t.app.inject({ method: 'GET', url: '/pull/v1/profile/c1', headers: bearer(pullKey) })
  const put = () =>
    t.app.inject({
      method: 'PUT',
      url: '/api/v1/collections/profile/records/c1',
      headers: bearer(t.adminKey),
      payload: { fields: { segment: 'gold' } },
    })

  it('answers 503 while the store is down and recovers by itself when it returns', async () => {
    assert.equal((await put()).statusCode, 200)
    assert.equal((await get()).statusCode, 200)

    await kill(redis)
    const started = Date.now()
    const down = await get()
    assert.equal(down.statusCode, 503, down.body)
    assert.equal(down.json().error.code, 'RIFFLE_STORE_UNAVAILABLE')
    assert.equal(down.headers['retry-after'], '1')
    assert.ok(Date.now() - started < 3_000, 'a store that is down is reported quickly, not after a long wait')
    const mget = await t.app.inject({
      method: 'POST',
      url: '/pull/v1/profile/_mget',
      headers: bearer(pullKey),
      payload: { keys: ['c1'] },
    })
    assert.equal(mget.statusCode, 503)
    assert.equal((await put()).statusCode, 503)
    await assert.rejects(t.riffle.pull.ping(), /RIFFLE_STORE_UNAVAILABLE|pull store/)

    redis = await startRedis(port, tmp.dir)
    const deadline = Date.now() + 15_000
    let res = await get()
    while (res.statusCode === 503 && Date.now() < deadline) {
      await sleep(100)
      res = await get()
    }
    // The private server keeps nothing across a restart: the record is gone, the store answers.
    assert.equal(res.statusCode, 404, res.body)
    assert.equal((await put()).statusCode, 200)
    const back = await get()
    assert.equal(back.statusCode, 200)
    assert.equal(back.json().fields.segment, 'gold')
  })
})

/** FerretDB as scripts/services.sh builds it. */
const FERRETDB = fileURLToPath(new URL('../../.riffle/cache/bin/ferretdb-riffle', import.meta.url))

function startFerret(port: number, dir: string): ChildProcess {
  if (!existsSync(FERRETDB)) throw new Error(`${FERRETDB} is missing: run scripts/services.sh up ferretdb`)
  return spawn(FERRETDB, ['-listen-addr', `127.0.0.1:${port}`, '-sqlite-dir', dir, '-log-level', 'error'], {
    stdio: 'ignore',
  })
}

async function eventually<T>(fn: () => Promise<T>, ms: number): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await fn()
    } catch (e) {
      if (Date.now() > deadline) throw e
      await sleep(200)
    }
  }
}

async function unavailable(p: Promise<unknown>): Promise<void> {
  try {
    await p
  } catch (e) {
    assert.ok(isRiffleError(e), String(e))
    assert.equal(e.code, 'RIFFLE_STORE_UNAVAILABLE', e.message)
    return
  }
  assert.fail('expected RIFFLE_STORE_UNAVAILABLE')
}

describe('pull store outage: MongoDB adapter', () => {
  const tmp = tempDir('riffle-ferret-')
  let ferret: ChildProcess | undefined
  after(async () => {
    if (ferret) await kill(ferret)
    tmp.cleanup()
  })

  it('fails fast while the server is down, before and after it ran, and recovers by itself', async () => {
    const port = await freePort()
    const store = await openPullStore(`mongodb://127.0.0.1:${port}/riffle_outage`, tmp.dir)
    try {
      const collection = {
        name: 'profile',
        key: 'id',
        fields: [{ name: 'segment', type: 'string' as const }],
      }
      await store.prepare([collection])
      // Never up yet: the store opened anyway, and says the server is unavailable.
      await unavailable(store.ping())
      await unavailable(store.get('profile', 'k1'))

      ferret = startFerret(port, tmp.dir)
      await eventually(() => store.ping(), 15_000)
      await store.write('profile', [{ key: 'k1', set: { segment: 'gold' }, writer: 'test' }])
      assert.equal((await store.get('profile', 'k1'))?.fields.segment, 'gold')

      await kill(ferret)
      const started = Date.now()
      await unavailable(store.get('profile', 'k1'))
      await unavailable(store.write('profile', [{ key: 'k2', set: { segment: 'x' }, writer: 'test' }]))
      assert.ok(Date.now() - started < 10_000)

      ferret = startFerret(port, tmp.dir)
      const back = await eventually(() => store.get('profile', 'k1'), 15_000)
      assert.equal(back?.fields.segment, 'gold', 'the data survived the restart')
    } finally {
      await store.close()
    }
  })
})
