import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { createMetricsRegistry } from '../../src/api/routes/health.js'
import type { SqlDatabase } from '../../src/db/sql.js'
import { HistoryRetention } from '../../src/history/retention.js'
import { HistoryStore } from '../../src/history/store.js'
import { activation, backends, range, T0 } from './fixtures.js'

const DAY = 86_400_000

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l))
      cb()
    },
  })
  return { log: pino({ level: 'info' }, sink), lines }
}

for (const backend of backends) {
  describe(`output history retention on ${backend.name}`, () => {
    let db: SqlDatabase
    let done: () => Promise<void>
    let store: HistoryStore
    before(async () => {
      ;({ db, done } = await backend.open())
      store = await HistoryStore.open(db)
    })
    after(async () => {
      await db.close()
      await done()
    })

    it('keeps N days, waits for every consumer, and says so in the log and the metrics', async () => {
      // ten records a day apart: days 0..9; the clock stands on day 12, so 5 days keep days 7-9
      await store.append(range(10).map((i) => activation(i, { outputTime: T0 + i * DAY })))
      const seqOf = async (i: number) => (await store.get(activation(i).id))!.seq
      await store.addConsumer('warehouse')
      await store.beginExport('warehouse', await seqOf(3))
      await store.completeExport('warehouse', 0, await seqOf(3), 4)

      const metrics = createMetricsRegistry()
      const { log, lines } = capturingLogger()
      const retention = new HistoryRetention({ store, days: 5, log, metrics, now: () => T0 + 12 * DAY })
      const r = await retention.purge()
      assert.deepEqual(r, { purged: 4, blocked: 3, blockedBy: ['warehouse'] })

      const warn = lines.find((l) => l.level === 40)
      assert.ok(warn, 'a warning is logged')
      assert.match(String(warn.msg), /retention is blocked: 3 records older than 5 days .* warehouse/)
      assert.equal(warn.blocked, 3)
      assert.deepEqual(warn.consumers, ['warehouse'])
      const text = await metrics.metrics()
      assert.match(text, /riffle_history_retention_blocked_records 3/)
      assert.match(text, /riffle_history_purged_records_total 4/)
      assert.match(text, /riffle_history_consumer_lag_records\{consumer="warehouse"\} 6/)
      assert.match(text, /riffle_history_retention_runs_total\{result="blocked"\} 1/)

      // the consumer catches up: the next run purges the rest and clears the gauge
      const { watermark } = await store.requireConsumer('warehouse')
      await store.beginExport('warehouse', await store.maxSeq())
      assert.ok(await store.completeExport('warehouse', watermark, await store.maxSeq(), 6))
      const again = new HistoryRetention({ store, days: 5, log, metrics, now: () => T0 + 12 * DAY })
      assert.deepEqual(await again.purge(), { purged: 3, blocked: 0, blockedBy: [] })
      const text2 = await metrics.metrics()
      assert.match(text2, /riffle_history_retention_blocked_records 0/)
      assert.match(text2, /riffle_history_purged_records_total 7/)
      assert.match(text2, /riffle_history_consumer_lag_records\{consumer="warehouse"\} 0/)
      assert.equal((await store.list({}, { limit: 100 })).items.length, 3)
      await store.removeConsumer('warehouse')
    })

    it('stops purging at once when a consumer is registered while a purge runs (it starts from the oldest record)', async () => {
      await db.run('delete from history_activations')
      await store.append(range(50).map((i) => activation(1000 + i, { outputTime: T0 + i })))
      // the same database, the consumer registered between the purge's first and second chunk (as
      // `riffle history consumers add` in another process would)
      let deletes = 0
      let atRegistration = -1
      const hooked = new Proxy(db, {
        get(target, prop) {
          if (prop === 'run')
            return async (sql: string, params?: unknown[]) => {
              if (sql.startsWith('delete from history_activations') && ++deletes === 2) {
                await store.addConsumer('late')
                atRegistration = (await store.list({}, { limit: 1000 })).items.length
              }
              return target.run(sql, params as never)
            }
          const v = Reflect.get(target, prop, target)
          return typeof v === 'function' ? v.bind(target) : v
        },
      })
      try {
        const purging = await HistoryStore.open(hooked)
        const r = await purging.purge(T0 + 3 * DAY, 10)
        assert.equal(atRegistration, 40, 'the first chunk of ten went before the consumer existed')
        assert.equal(r.purged, 10)
        assert.equal(
          (await store.list({}, { limit: 1000 })).items.length,
          40,
          'nothing purged after registration',
        )
      } finally {
        await store.removeConsumer('late').catch(() => {})
      }
    })

    it('runs on a timer until stopped', async () => {
      await db.run('delete from history_activations')
      await store.append([activation(1, { outputTime: T0 })])
      const { log } = capturingLogger()
      const retention = new HistoryRetention({ store, days: 1, log, now: () => T0 + 3 * DAY })
      retention.start(20)
      await new Promise((r) => setTimeout(r, 100))
      await retention.stop()
      assert.equal((await store.list({})).items.length, 0)
      await store.append([activation(2, { outputTime: T0 })])
      await new Promise((r) => setTimeout(r, 60))
      assert.equal((await store.list({})).items.length, 1, 'stopped: no more runs')
    })
  })
}
