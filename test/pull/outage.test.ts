/**
 * A pull store that goes down: the Pull API answers 503 RIFFLE_STORE_UNAVAILABLE at once, stays
 * up, and recovers by itself when the store returns. Uses a private Redis server on a free port,
 * killed with SIGKILL and restarted on the same port.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
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
