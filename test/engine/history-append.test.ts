import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Activation } from '../../src/history/activation.js'
import type { HistoryStore } from '../../src/history/store.js'
import { uniqueName } from '../helpers.js'
import {
  allActivations,
  createTopic,
  type Harness,
  produce,
  readTopic,
  startEngine,
  waitFor,
} from './harness.js'

const topic = uniqueName('histfail.events')
const out = uniqueName('histfail.offers')
const EVENTS = 40
let h: Harness
let failures = 0

before(async () => {
  await createTopic(topic)
  // The history append on the worker thread fails twice (as a full disk would), then works.
  h = await startEngine({
    batchMax: 10,
    historyPort: (history) =>
      new Proxy(history, {
        get(target, prop, receiver) {
          if (prop === 'appendInBackground')
            return async (batch: readonly Activation[]) => {
              if (failures < 2) {
                failures++
                throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
              }
              return target.appendInBackground(batch)
            }
          const v = Reflect.get(target, prop, receiver)
          return typeof v === 'function' ? v.bind(target) : v
        },
      }) as HistoryStore,
  })
  await h.apply(`
streams:
  - name: events
    topic: ${topic}
    key: customer_id
    fields:
      - { name: customer_id, type: string, required: true }
campaigns:
  - name: echo
    trigger: { stream: events }
    outputs:
      - kafka: { topic: ${out} }
`)
  await h.engine.start()
})
after(async () => h?.close())

test('a history append that fails on the worker holds the Kafka commit back, then every event is recorded and output once', async () => {
  await produce(
    topic,
    Array.from({ length: EVENTS }, (_, i) => ({
      key: `c${i}`,
      value: JSON.stringify({ customer_id: `c${i}` }),
    })),
  )
  const recorded = await waitFor('every activation in the history', async () => {
    const all = await allActivations(h.history, 'echo')
    return all.length >= EVENTS && all
  })
  assert.equal(failures, 2)
  assert.equal(new Set(recorded.map((a) => a.id)).size, EVENTS)
  assert.equal(recorded.length, EVENTS)
  const msgs = await readTopic(out, (m) => m.length >= EVENTS, 30_000, 1500)
  assert.equal(msgs.length, EVENTS, 'read_committed sees each activation once')
  assert.deepEqual(
    new Set(msgs.map((m) => JSON.parse(m.value).customerKey)),
    new Set(Array.from({ length: EVENTS }, (_, i) => `c${i}`)),
  )
})
