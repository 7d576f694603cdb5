import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Producer, stringSerializers } from '@platformatic/kafka'
import { parse } from 'yaml'
import { kafkaBrokers, tempDir, uniqueName } from '../helpers.js'

const BIN = fileURLToPath(new URL('../../bin/riffle.js', import.meta.url))
const EXAMPLE = fileURLToPath(new URL('../../examples/definitions.yaml', import.meta.url))
const DEMO = fileURLToPath(new URL('../../examples/demo/definitions.yaml', import.meta.url))

describe('riffle CLI (the built package)', () => {
  const tmp = tempDir()
  after(() => tmp.cleanup())
  const riffleIn = (dataDir: string, ...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: { ...process.env, RIFFLE_DATA_DIR: join(tmp.dir, dataDir), RIFFLE_DATABASE_URL: '' },
    })
    return { code: r.status, out: r.stdout, err: r.stderr }
  }
  const riffle = (...args: string[]) => riffleIn('data', ...args)

  it('validates, applies (idempotently), and exports definitions that round-trip', () => {
    assert.equal(riffle('validate', '-f', EXAMPLE).code, 0)
    const first = riffle('apply', '-f', EXAMPLE)
    assert.equal(first.code, 0, first.err)
    assert.match(first.out, /4 created, 0 updated, 0 deleted, 0 unchanged/)
    assert.match(riffle('apply', '-f', EXAMPLE).out, /0 created, 0 updated, 0 deleted, 4 unchanged/)
    const exported = riffle('export-defs')
    assert.equal(exported.code, 0)
    const file = join(tmp.dir, 'exported.yaml')
    writeFileSync(file, exported.out)
    assert.match(riffle('apply', '-f', file).out, /0 created, 0 updated, 0 deleted, 4 unchanged/)
    const dry = riffle('apply', '-f', file, '--prune', '--dry-run')
    assert.match(dry.out, /dry run: 0 created/)
  })

  // The README's path: `npm start` (the demo) applies its definitions to ./.riffle/data, then the
  // newcomer applies DESIGN.md's example there. Failed while the demo's profile had a field
  // (last_store, written by a demo campaign) that the example's profile lacks.
  it("applies DESIGN.md's example on top of the demo's definitions", () => {
    const demo = riffleIn('demo-data', 'apply', '-f', DEMO)
    assert.equal(demo.code, 0, demo.err)
    const example = riffleIn('demo-data', 'apply', '-f', EXAMPLE)
    assert.equal(example.code, 0, example.err)
    assert.match(example.out, /created stream purchases/)
    const again = riffleIn('demo-data', 'apply', '-f', DEMO)
    assert.equal(again.code, 0, again.err)
  })

  it('exits 1 listing every problem as file:line:column path: message', () => {
    const file = join(tmp.dir, 'bad.yaml')
    writeFileSync(
      file,
      'streams:\n  - name: s\n    topic: "a b"\n    key: id\n    fields:\n      - { name: id, type: string }\n',
    )
    const r = riffle('validate', '-f', file)
    assert.equal(r.code, 1)
    assert.match(
      r.err,
      new RegExp(
        `${file.replace(/[.]/g, '\\.')}:3:12 streams\\[0\\]\\.topic: "a b" is not a valid Kafka topic name`,
      ),
    )
    assert.match(r.err, /1 problem found/)
    const applied = riffle('apply', '-f', file)
    assert.equal(applied.code, 1)
    assert.match(applied.err, /RIFFLE_INVALID_DEFINITION/)
  })

  it('says which file it cannot read', () => {
    const r = riffle('apply', '-f', join(tmp.dir, 'missing.yaml'))
    assert.equal(r.code, 1)
    assert.match(r.err, /missing\.yaml: cannot read the file \(ENOENT\)/)
  })

  it('creates keys, printing the key alone on the last line', () => {
    const r = riffle('keys', 'create', '--scope', 'admin', '--scope', 'pull:read:profile')
    assert.equal(r.code, 0, r.err)
    const lines = r.out.trimEnd().split('\n')
    assert.match(lines[lines.length - 1]!, /^rfl_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/)
    const bad = riffle('keys', 'create', '--scope', 'root')
    assert.equal(bad.code, 1)
    assert.match(bad.err, /unknown scope "root"/)
    const list = riffle('keys', 'list')
    assert.match(list.out, /admin,pull:read:profile/)
    assert.doesNotMatch(list.out, /rfl_/)
  })

  it('infers a stream from a topic on the real broker: typed fields, nested paths, key and time', async () => {
    const topic = uniqueName('test.cli-infer')
    const producer = new Producer({
      clientId: 'test',
      bootstrapBrokers: kafkaBrokers(),
      serializers: stringSerializers,
      autocreateTopics: true,
    })
    const messages = Array.from({ length: 8 }, (_, i) => ({
      topic,
      key: `c${i}`,
      value: JSON.stringify({
        customer_id: `c${i}`,
        amount: i + 0.5,
        location: { store_id: `s${i}`, geo: { lat: 51.5 } },
        ts: new Date(1_700_000_000_000 + i).toISOString(),
      }),
    }))
    await producer.send({ messages })
    await producer.close()
    const r = riffle('streams', 'infer', topic, '--name', 'inferred')
    assert.equal(r.code, 0, r.err)
    assert.match(r.err, /sampled 8 messages \(0 skipped\)/)
    const proposal = parse(r.out) as { streams: Array<Record<string, unknown>> }
    const stream = proposal.streams[0]!
    assert.deepEqual(
      [stream.name, stream.topic, stream.key, stream.time],
      ['inferred', topic, 'customer_id', 'ts'],
    )
    assert.deepEqual(stream.fields, [
      { name: 'customer_id', type: 'string', required: true },
      { name: 'amount', type: 'number', required: true },
      { name: 'store_id', type: 'string', required: true, path: 'location.store_id' },
      { name: 'lat', type: 'number', required: true, path: 'location.geo.lat' },
      { name: 'ts', type: 'timestamp', required: true },
    ])
    const file = join(tmp.dir, 'inferred.yaml')
    writeFileSync(file, r.out)
    assert.equal(riffle('validate', '-f', file).code, 0, 'the proposal is a valid definitions file')

    const bad = riffle('streams', 'infer', 'bad topic')
    assert.equal(bad.code, 1)
    assert.match(bad.err, /"bad topic" is not a valid Kafka topic name/)
    const missing = riffle('streams', 'infer', uniqueName('test.missing'))
    assert.equal(missing.code, 1)
    assert.match(missing.err, /RIFFLE_NOT_FOUND: topic "test\.missing-\w+" does not exist/)
  })

  it('rejects a bad setting, naming it', () => {
    const r = spawnSync(process.execPath, [BIN, 'export-defs'], {
      encoding: 'utf8',
      env: { ...process.env, RIFFLE_DATA_DIR: join(tmp.dir, 'data'), RIFFLE_DATABASE_URL: 'mysql://x' },
    })
    assert.equal(r.status, 2)
    assert.match(r.stderr, /RIFFLE_DATABASE_URL/)
  })
})

describe('riffle start', () => {
  it('serves health, readiness (database, pull store, the local Kafka broker, the engine) and the API docs', async () => {
    const { spawn } = await import('node:child_process')
    const tmp = tempDir()
    const port = String(20000 + Math.floor(Math.random() * 20000))
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      RIFFLE_DATA_DIR: tmp.dir,
      RIFFLE_PORT: port,
      RIFFLE_DATABASE_URL: '',
    }
    delete env.RIFFLE_KAFKA_BROKERS // the local broker: scripts/services.sh up kafka (already running here)
    const child = spawn(process.execPath, [BIN, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let logs = ''
    child.stdout.on('data', (d) => (logs += d))
    child.stderr.on('data', (d) => (logs += d))
    try {
      const base = `http://127.0.0.1:${port}`
      const deadline = Date.now() + 120_000
      let ready: Response | undefined
      while (Date.now() < deadline) {
        ready = await fetch(`${base}/readyz`).catch(() => undefined)
        if (ready?.status === 200 || /kafka is not available/.test(logs)) break
        await new Promise((r) => setTimeout(r, 250))
      }
      assert.equal(ready?.status, 200, `not ready: ${logs}`)
      const body = (await ready!.json()) as { checks: Array<{ name: string; ok: boolean }> }
      assert.deepEqual(
        body.checks.map((c) => [c.name, c.ok]),
        [
          ['database', true],
          ['pull store', true],
          ['kafka', true],
          ['engine', true],
        ],
      )
      assert.equal((await fetch(`${base}/healthz`)).status, 200)
      assert.equal((await fetch(`${base}/docs/json`)).status, 200)
      assert.match(await (await fetch(`${base}/metrics`)).text(), /riffle_process_/)
      assert.doesNotMatch(logs, /rfl_/, 'no keys in logs')
    } finally {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
      tmp.cleanup()
    }
  })
})
