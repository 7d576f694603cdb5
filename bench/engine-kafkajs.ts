/**
 * The kafkajs baseline for bench:engine: the same campaign written by hand, the way a team would
 * without Riffle: eachMessage, JSON.parse, one profile lookup, a hand-written filter and template,
 * one upsert into the pull store, one history insert and one produce per message (SQLite files
 * as the embedded stores, like Riffle's defaults).
 *
 *   tsx bench/engine-kafkajs.ts TOPIC COUNT DATA_DIR BROKERS
 */
import { join } from 'node:path'
import { Kafka, logLevel } from 'kafkajs'
import Sqlite from '../src/db/sqlite-driver.js'

const [topic, countArg, dataDir, brokers] = process.argv.slice(2) as [string, string, string, string]
const total = Number(countArg)
const db = new Sqlite(join(dataDir, 'baseline.db'))
db.pragma('journal_mode = WAL')
db.pragma('synchronous = NORMAL')
db.exec(`create table if not exists profile (customer_id text primary key, first_name text, segment text, last_offer text);
create table if not exists history (id text primary key, customer_id text, content text, at integer)`)
const insertProfile = db.prepare(
  'insert or replace into profile (customer_id, first_name, segment) values (?, ?, ?)',
)
db.transaction(() => {
  for (let i = 0; i < 10_000; i++) insertProfile.run(`c${i}`, `N${i}`, 'gold')
})()
const getProfile = db.prepare('select first_name, segment from profile where customer_id = ?')
const setOffer = db.prepare(
  'insert into profile (customer_id, last_offer) values (?, ?) on conflict (customer_id) do update set last_offer = excluded.last_offer',
)
const addHistory = db.prepare(
  'insert or ignore into history (id, customer_id, content, at) values (?, ?, ?, ?)',
)

const kafka = new Kafka({ clientId: 'baseline', brokers: brokers.split(','), logLevel: logLevel.NOTHING })
const consumer = kafka.consumer({ groupId: `baseline-${Date.now()}` })
const producer = kafka.producer({ idempotent: true })
await consumer.connect()
await producer.connect()
await consumer.subscribe({ topic, fromBeginning: true })

let seen = 0
let start = 0
const done = new Promise<void>((resolve) => {
  consumer.run({
    eachMessage: async ({ partition, message }) => {
      if (seen === 0) start = performance.now()
      const event = JSON.parse(message.value!.toString()) as {
        customer_id: string
        order_id: string
        amount: number
      }
      const profile = getProfile.get(event.customer_id) as
        | { first_name: string | null; segment: string | null }
        | undefined
      if (event.amount >= 10 && profile?.segment !== 'staff') {
        const content = {
          offer_code: `THX-${event.order_id}`,
          message: `Thanks ${profile?.first_name ?? 'friend'}!`,
        }
        const id = `bench@1/${topic}/${partition}/${message.offset}`
        setOffer.run(event.customer_id, content.offer_code)
        addHistory.run(id, event.customer_id, JSON.stringify(content), Date.now())
        await producer.send({
          topic: `${topic}-out`,
          messages: [{ key: event.customer_id, value: JSON.stringify({ id, content }) }],
        })
      }
      if (++seen === total) resolve()
    },
  })
})
await done
const elapsed = performance.now() - start
process.stdout.write(`rate=${((total / elapsed) * 1000).toFixed(1)}\n`)
await consumer.disconnect()
await producer.disconnect()
process.exit(0)
