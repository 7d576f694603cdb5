/** Builds the real-time engine from the configuration and the shared services. */
import type { Registry } from 'prom-client'
import type { Config } from '../config.js'
import type { SqlDatabase } from '../db/sql.js'
import type { DefinitionsService } from '../definitions/service.js'
import type { Logger } from '../log.js'
import type { PullStore } from '../pull/store.js'
import type { HistoryPort } from './activate.js'
import { DedupeStore } from './dedupe.js'
import { Engine } from './engine.js'
import { EngineMetrics } from './metrics.js'
import { TargetPolicy } from './ssrf.js'
import { WebhookSender } from './webhook.js'

export { Engine } from './engine.js'

export interface EngineServices {
  config: Config
  log: Logger
  db: SqlDatabase
  defs: DefinitionsService
  history: HistoryPort
  pull: PullStore
  brokers: string[]
  registry: Registry
}

export async function createEngine(
  s: EngineServices,
): Promise<{ engine: Engine; close: () => Promise<void> }> {
  const webhooks = new WebhookSender(new TargetPolicy(s.config.engine.webhookAllow))
  const engine = new Engine(
    {
      defs: s.defs,
      pull: s.pull,
      history: s.history,
      dedupe: await DedupeStore.open(s.db),
      webhooks,
      log: s.log,
      metrics: new EngineMetrics(s.registry),
    },
    {
      brokers: s.brokers,
      groupId: s.config.engine.group,
      engineId: s.config.engine.id,
      batchMax: s.config.engine.batchMax,
      sessionTimeoutMs: s.config.engine.sessionTimeoutMs,
      historyTopic: s.config.historyTopic,
    },
  )
  return {
    engine,
    close: async () => {
      await engine.stop()
      await webhooks.close()
    },
  }
}
