/**
 * `riffle demo`: Riffle on its embedded defaults with example definitions, a few thousand
 * profiles in the Pull Marketing database and a steady synthetic purchase stream, so that a
 * newcomer sees campaigns firing within seconds.
 */
import { existsSync } from 'node:fs'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Producer } from '@platformatic/kafka'
import type { Config } from '../config.js'
import { readDefinitionsFile } from '../definitions/source.js'
import { SerialProducer } from '../kafka/serial-producer.js'
import { PACKAGE_ROOT, resolveKafkaBrokers } from '../runtime.js'
import { type Server, startServer } from '../server.js'

const FIRST = [
  'Ann',
  'Bob',
  'Chloe',
  'Dev',
  'Emma',
  'Femi',
  'Grace',
  'Hugo',
  'Isla',
  'Jon',
  'Kai',
  'Lena',
  'Max',
  'Nia',
  'Omar',
  'Priya',
]
const SEGMENTS = ['gold', 'silver', 'bronze', 'staff']
const PRODUCTS = ['trail shoes', 'rain jacket', 'yoga mat', 'smart watch', 'espresso beans', 'backpack']

export interface DemoOptions {
  profiles: number
  rate: number
}

/** A deterministic pseudo-random sequence, so that every demo looks the same. */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 0x1_0000_0000
  }
}

async function demoKey(server: Server, dataDir: string): Promise<string> {
  const file = join(dataDir, 'demo-admin.key')
  if (existsSync(file)) {
    const key = (await readFile(file, 'utf8')).trim()
    if (await server.riffle.keys.verify(key)) return key
  }
  const { key } = await server.riffle.keys.create(['admin'], 'demo')
  await writeFile(file, `${key}\n`, { mode: 0o600 })
  await chmod(file, 0o600)
  return key
}

export async function runDemo(config: Config, opts: DemoOptions): Promise<() => Promise<void>> {
  const server = await startServer(config)
  const out = (line: string) => process.stdout.write(`demo: ${line}\n`)
  const source = await readDefinitionsFile(join(PACKAGE_ROOT, 'examples', 'demo', 'definitions.yaml'))
  const applied = await server.riffle.defs.apply(source, { actor: 'demo' })
  out(
    `definitions applied (${applied.created.length} created, ${applied.updated.length} updated, ${applied.unchanged} unchanged)`,
  )
  await server.riffle.pull.prepare((await server.riffle.defs.snapshot()).definitions.collections)

  const rand = rng(42)
  const writes = Array.from({ length: opts.profiles }, (_, i) => ({
    key: `c${i}`,
    set: {
      first_name: FIRST[Math.floor(rand() * FIRST.length)]!,
      segment: SEGMENTS[Math.floor(rand() * (SEGMENTS.length - 0.8))]!,
      churn_score: Math.round(rand() * 1000) / 1000,
      next_best_product: PRODUCTS[Math.floor(rand() * PRODUCTS.length)]!,
    },
    writer: 'load:demo',
  }))
  for (let i = 0; i < writes.length; i += 1000)
    await server.riffle.pull.write('profile', writes.slice(i, i + 1000))
  out(`${opts.profiles} profiles loaded into the Pull Marketing database (collection "profile")`)

  const key = await demoKey(server, config.dataDir)
  out(`open ${server.url}/docs (API) and ${server.url}/ (UI); admin key: ${key}`)
  out(`try: curl -H "Authorization: Bearer ${key}" ${server.url}/pull/v1/profile/c42`)

  const brokers = await resolveKafkaBrokers(config, server.log)
  // one send at a time (see SerialProducer): the demo's first sends race the topic's creation
  const producer = new SerialProducer(
    () =>
      new Producer({
        clientId: 'riffle-demo',
        bootstrapBrokers: brokers,
        idempotent: true,
        acks: -1,
        autocreateTopics: true,
      }),
  )
  let produced = 0
  let order = Date.now() % 1_000_000
  const newcomers = opts.profiles + 1000
  const timer = setInterval(() => {
    const batch = Array.from({ length: Math.max(1, Math.round(opts.rate / 10)) }, () => {
      const customer = `c${Math.floor(rand() * newcomers)}`
      const event = {
        customer_id: customer,
        order_id: `o${++order}`,
        amount: Math.round(rand() * rand() * 40_000) / 100,
        location: { store_id: `s${Math.floor(rand() * 12)}` },
        ts: new Date().toISOString(),
      }
      return {
        topic: 'demo.purchases',
        key: Buffer.from(customer),
        value: Buffer.from(JSON.stringify(event)),
      }
    })
    producer.send(batch).then(
      () => {
        produced += batch.length
      },
      (e: Error) => out(`producing failed: ${e.message}`),
    )
  }, 100)

  const report = setInterval(async () => {
    const m = await server.app.inject({ method: 'GET', url: '/metrics' })
    const sent = [
      ...m.body.matchAll(
        /^riffle_activations_total\{campaign="([^"]+)",cell="[^"]*",status="([^"]+)"\} (\d+)/gm,
      ),
    ]
    const byCampaign = new Map<string, number>()
    for (const [, campaign, status, n] of sent) {
      if (status === 'sent') byCampaign.set(campaign!, (byCampaign.get(campaign!) ?? 0) + Number(n))
    }
    const summary =
      [...byCampaign].map(([c, n]) => `${c} ${n}`).join(', ') || 'waiting for the engine to join its group…'
    out(`${produced} events produced; sent: ${summary}`)
  }, 5_000)

  return async () => {
    clearInterval(timer)
    clearInterval(report)
    await producer.close().catch(() => {})
    await server.close()
  }
}
