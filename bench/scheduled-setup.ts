/** What bench:scheduled and bench:scheduled-memory share: the audience table, the campaign, the stores. */
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { loadConfig } from '../src/config.js'
import { openDataStore } from '../src/datastore/store.js'
import { parseDefinitionsText } from '../src/definitions/source.js'
import { TargetPolicy } from '../src/engine/ssrf.js'
import { WebhookSender } from '../src/engine/webhook.js'
import { createLogger } from '../src/log.js'
import { openRiffle } from '../src/runtime.js'
import { Scheduler } from '../src/scheduler/scheduler.js'

/** A manual campaign over `customers`: a score computed in SQL and one CEL field, to the pull store. */
export function scoreDefinitions(collection: string, campaign: string): string {
  return `
collections:
  - name: ${collection}
    key: customer_id
    fields: [ { name: score, type: number }, { name: band, type: string } ]
campaigns:
  - name: ${campaign}
    trigger: { manual: true }
    audience:
      sql: "select customer_id, 1 / (1 + exp(-(-1.5 + 0.02 * recency - 0.3 * orders + 0.001 * spend))) as score from customers"
    content:
      band: 'row.score >= 0.5 ? "high" : "low"'
    outputs:
      - pull: { collection: ${collection}, key: row.customer_id, set: { score: row.score, band: content.band } }
`
}

/** The `customers` table of `rows` rows in `<dir>/datastore.duckdb`. */
export async function createCustomers(dir: string, rows: number): Promise<void> {
  const duck = await DuckDBInstance.create(join(dir, 'datastore.duckdb'))
  const c = await duck.connect()
  await c.run(
    `create table customers as select 'c' || lpad(i::varchar, 9, '0') as customer_id, (i % 365)::integer as recency, (i % 17)::integer as orders, ((i * 7919) % 5000)::double as spend from range(${rows}) t(i)`,
  )
  c.closeSync()
  duck.closeSync()
}

export interface ScheduledBench {
  scheduler: Scheduler
  close(): Promise<void>
}

/** Riffle's stores in `dir` (the pull store at `pullUrl`), the definitions applied, a scheduler. */
export async function openScheduledBench(
  dir: string,
  definitions: string,
  pullUrl?: string,
): Promise<ScheduledBench> {
  const config = loadConfig({ RIFFLE_DATA_DIR: dir, ...(pullUrl ? { RIFFLE_PULLSTORE_URL: pullUrl } : {}) })
  const log = createLogger('silent')
  const riffle = await openRiffle(config, log)
  await riffle.defs.apply(parseDefinitionsText(definitions), { actor: 'bench' })
  await riffle.pull.prepare((await riffle.defs.snapshot()).definitions.collections)
  const datastore = await openDataStore(config.datastoreUrl, dir)
  const webhooks = new WebhookSender(new TargetPolicy())
  const scheduler = await Scheduler.open({
    db: riffle.db,
    defs: riffle.defs,
    datastore,
    pull: riffle.pull,
    history: riffle.history,
    webhooks,
    log,
  })
  return {
    scheduler,
    close: async () => {
      await scheduler.stop()
      await webhooks.close()
      await datastore.close()
      await riffle.close()
    },
  }
}
