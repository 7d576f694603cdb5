import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { kafkaBrokers, tempDir, uniqueName } from '../helpers.js'

const BIN = fileURLToPath(new URL('../../bin/riffle.js', import.meta.url))

it('riffle demo applies the example, loads profiles and shows campaigns firing', async () => {
  const tmp = tempDir()
  const child = spawn(process.execPath, [BIN, 'demo', '--port', '0', '--rate', '50', '--profiles', '500'], {
    env: {
      ...process.env,
      RIFFLE_DATA_DIR: tmp.dir,
      RIFFLE_KAFKA_BROKERS: kafkaBrokers().join(','),
      RIFFLE_ENGINE_GROUP: uniqueName('demo'),
      RIFFLE_ENGINE_ID: uniqueName('demo'),
      RIFFLE_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  try {
    const deadline = Date.now() + 90_000
    while (Date.now() < deadline && !/sent: .*big-spender-thanks [1-9]/.test(out))
      await new Promise((r) => setTimeout(r, 500))
    assert.match(out, /demo: definitions applied/)
    assert.match(out, /demo: 500 profiles loaded/)
    assert.match(out, /sent: .*big-spender-thanks [1-9]/, out)
    const url = /open (http:\/\/127\.0\.0\.1:\d+)\/docs/.exec(out)?.[1]
    const key = /admin key: (rfl_\S+)/.exec(out)?.[1]
    assert.ok(url && key)
    const profile = await fetch(`${url}/pull/v1/profile/c42`, { headers: { authorization: `Bearer ${key}` } })
    assert.equal(profile.status, 200)
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    tmp.cleanup()
  }
})
