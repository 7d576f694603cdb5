import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../../src/config.js'
import type { DataStore } from '../../src/datastore/store.js'
import { openDataStore } from '../../src/datastore/store.js'
import { parseDefinitionsText } from '../../src/definitions/source.js'
import { TargetPolicy } from '../../src/engine/ssrf.js'
import { WebhookSender } from '../../src/engine/webhook.js'
import { createLogger } from '../../src/log.js'
import { openRiffle, type Riffle } from '../../src/runtime.js'
import { Scheduler, type SchedulerDeps, type SchedulerOptions } from '../../src/scheduler/scheduler.js'
import { tempDir } from '../helpers.js'

export interface Harness {
  riffle: Riffle
  datastore: DataStore
  dir: string
  /** `deps`: added to (or replacing) the harness's own, e.g. brokers and a history topic. */
  scheduler(opts?: SchedulerOptions, deps?: Partial<SchedulerDeps>): Promise<Scheduler>
  apply(yaml: string): Promise<void>
  loadCsv(table: string, csv: string): Promise<number>
  close(): Promise<void>
}

export async function openHarness(env: Record<string, string> = {}): Promise<Harness> {
  const tmp = tempDir('riffle-sched-')
  const config = loadConfig({ RIFFLE_DATA_DIR: tmp.dir, ...env })
  const log = createLogger('silent')
  const riffle = await openRiffle(config, log)
  const datastore = await openDataStore(config.datastoreUrl, config.dataDir)
  const webhooks = new WebhookSender(new TargetPolicy(['127.0.0.1']))
  const schedulers: Scheduler[] = []
  return {
    riffle,
    datastore,
    dir: tmp.dir,
    scheduler: async (opts = {}, deps = {}) => {
      const s = await Scheduler.open(
        {
          db: riffle.db,
          defs: riffle.defs,
          datastore,
          pull: riffle.pull,
          history: riffle.history,
          webhooks,
          log,
          ...deps,
        },
        opts,
      )
      schedulers.push(s)
      return s
    },
    apply: async (yaml) => {
      await riffle.defs.apply(parseDefinitionsText(yaml), { actor: 'test' })
      await riffle.pull.prepare((await riffle.defs.snapshot()).definitions.collections)
    },
    loadCsv: async (table, csv) => {
      const f = join(tmp.dir, `${table}.csv`)
      writeFileSync(f, csv)
      return (await datastore.load(table, f)).rows
    },
    close: async () => {
      for (const s of schedulers) await s.stop()
      await webhooks.close()
      await datastore.close()
      await riffle.close()
      tmp.cleanup()
    },
  }
}
