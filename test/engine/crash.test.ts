import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/log.js'
import { openRiffle } from '../../src/runtime.js'
import { kafkaBrokers, tempDir, uniqueName } from '../helpers.js'
import { allActivations, createTopic, produce, readTopic, waitFor } from './harness.js'
import { type RiffleProcess, spawnRiffle } from './process.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('crash safety: kill -9 an engine process again and again', () => {
  const tmp = tempDir('riffle-crash-')
  const topic = uniqueName('crash.events')
  const out = uniqueName('crash.offers')
  const mirror = uniqueName('crash.history')
  const logFile = join(tmp.dir, 'engine.log')
  let proc: RiffleProcess | undefined
  after(async () => {
    await proc?.kill()
    // Every engine log line of the run, kept as a test artefact: what to read when it fails or is slow.
    mkdirSync('test-results', { recursive: true })
    try {
      copyFileSync(logFile, 'test-results/crash-engine.log')
    } catch {}
    tmp.cleanup()
  })

  it('accounts for every input offset exactly once in history, the pull store and the output topic', async () => {
    await createTopic(topic, 3)
    const env = {
      RIFFLE_DATA_DIR: join(tmp.dir, 'data'),
      RIFFLE_DATABASE_URL: '',
      RIFFLE_PULLSTORE_URL: '',
      RIFFLE_KAFKA_BROKERS: kafkaBrokers().join(','),
      RIFFLE_ENGINE_GROUP: uniqueName('crash-group'),
      RIFFLE_ENGINE_ID: uniqueName('crash-engine'),
      RIFFLE_ENGINE_BATCH: '50',
      RIFFLE_ENGINE_SESSION_TIMEOUT_MS: '6000',
      RIFFLE_HISTORY_TOPIC: mirror,
      // every batch and transaction in the log: what a failure leaves to read
      RIFFLE_LOG_LEVEL: 'debug',
    }
    const config = loadConfig(env)
    const riffle = await openRiffle(config, createLogger('silent'))
    const { parseDefinitionsText } = await import('../../src/definitions/source.js')
    await riffle.defs.apply(
      parseDefinitionsText(`
streams:
  - name: events
    topic: ${topic}
    key: customer_id
    fields: [ { name: customer_id, type: string, required: true }, { name: n, type: integer, required: true } ]
collections:
  - name: counters
    key: customer_id
    fields: [ { name: last_n, type: integer } ]
campaigns:
  - name: echo
    trigger: { stream: events }
    content: { n: event.n }
    outputs:
      - kafka: { topic: ${out} }
      - pull: { collection: counters, key: event.customer_id, set: { last_n: event.n } }
`),
      { actor: 'test' },
    )
    await riffle.close()

    const total = 3000
    const producing = (async () => {
      for (let i = 0; i < total; i += 100) {
        await produce(
          topic,
          Array.from({ length: 100 }, (_, j) => ({
            key: `c${(i + j) % 37}`,
            value: JSON.stringify({ customer_id: `c${(i + j) % 37}`, n: i + j }),
          })),
        )
        // ~18 s of traffic: every kill below lands while events are still arriving
        await sleep(600)
      }
    })()

    // Kill the engine at arbitrary moments while it works, then let the last one finish.
    const check = await openRiffle(loadConfig(env), createLogger('silent'))
    const recorded = async () => (await allActivations(check.history, 'echo')).length
    let kills = 0
    for (let round = 0; round < 5; round++) {
      const before = await recorded()
      if (before >= total) break
      proc = spawnRiffle(env, logFile)
      await waitFor(
        `round ${round}: the engine makes progress`,
        async () => (await recorded()) > before,
        60_000,
      ).catch(() => undefined)
      await sleep(Math.floor(Math.random() * 600))
      await proc.kill('SIGKILL')
      kills++
    }
    assert.ok(kills >= 3, `the engine was killed mid-stream at least 3 times (${kills})`)
    await producing
    proc = spawnRiffle(env, logFile)

    try {
      const all = await waitFor(
        'every offset in history',
        async () => {
          const rows = await allActivations(check.history, 'echo')
          return rows.length >= total && rows
        },
        180_000,
      ).catch((e) => {
        throw new Error(
          `${(e as Error).message}\n--- engine log tail ---\n${readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n')}`,
        )
      })
      const offsets = new Set(
        all.map((a) => `${a.source.kind === 'stream' ? `${a.source.partition}/${a.source.offset}` : a.id}`),
      )
      assert.equal(offsets.size, total, 'one history record per input offset')
      assert.deepEqual(new Set(all.map((a) => Number(a.content.n))).size, total)

      const msgs = await readTopic(out, (m) => m.length >= total, 60_000)
      const again = await readTopic(out, (m) => m.length >= total, 60_000, 2000)
      if (again.length !== total) {
        // Kept as a test artefact: the duplicated and the missing activations, and every engine log line.
        const seen = new Map<string, number>()
        for (const m of again)
          seen.set(
            m.headers['riffle-activation-id']!,
            (seen.get(m.headers['riffle-activation-id']!) ?? 0) + 1,
          )
        const dups = [...seen].filter(([, n]) => n > 1).map(([k]) => k)
        const missing = all.filter((a) => a.status === 'sent' && !seen.has(a.id)).map((a) => a.id)
        mkdirSync('test-results', { recursive: true })
        writeFileSync(
          'test-results/crash-output-topic.txt',
          `duplicated:\n${dups.join('\n')}\nmissing:\n${missing.join('\n')}\n----\n${readFileSync(logFile, 'utf8')}`,
        )
      }
      assert.equal(
        again.length,
        total,
        `read_committed sees each activation once (got ${again.length}; see test-results/crash-output-topic.txt)`,
      )
      const ids = new Set(msgs.map((m) => m.headers['riffle-activation-id']))
      assert.equal(ids.size, total)
      const mirrored = await readTopic(mirror, (m) => m.length >= total, 60_000)
      const mirroredAll = await readTopic(mirror, (m) => m.length >= total, 60_000, 2000)
      assert.equal(
        mirroredAll.length,
        total,
        `the history mirror holds each activation once (got ${mirroredAll.length}, ${mirrored.length})`,
      )
      assert.equal(new Set(mirroredAll.map((m) => m.headers['riffle-activation-id'])).size, total)

      const maxPerCustomer = new Map<string, number>()
      for (let i = 0; i < total; i++) {
        const k = `c${i % 37}`
        maxPerCustomer.set(k, Math.max(maxPerCustomer.get(k) ?? -1, i))
      }
      const c0 = await check.pull.get('counters', 'c0')
      assert.equal(
        Number(c0?.fields.last_n),
        maxPerCustomer.get('c0'),
        'the pull store holds the last event of each key (order per partition)',
      )
      const log = readFileSync(logFile, 'utf8')
      assert.doesNotMatch(log, /"customer_id"/, 'no payloads in the logs')
    } finally {
      await check.close()
    }
  })
})
