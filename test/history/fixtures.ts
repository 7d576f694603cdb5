/** Shared fixtures for the output history tests: both databases, and activations to append. */
import { openDatabase, type SqlDatabase } from '../../src/db/sql.js'
import type { Activation, ActivationStatus } from '../../src/history/activation.js'
import { activationId } from '../../src/history/activation.js'
import { freshPostgresDatabase, tempDir } from '../helpers.js'

export interface Backend {
  name: 'SQLite' | 'PostgreSQL'
  open: () => Promise<{ db: SqlDatabase; url: string; dataDir: string; done: () => Promise<void> }>
}

export const backends: Backend[] = [
  {
    name: 'SQLite',
    open: async () => {
      const tmp = tempDir('riffle-history-')
      const db = await openDatabase('sqlite:', tmp.dir, 'history.db')
      return { db, url: 'sqlite:', dataDir: tmp.dir, done: async () => tmp.cleanup() }
    },
  },
  {
    name: 'PostgreSQL',
    open: async () => {
      const pg = await freshPostgresDatabase()
      const tmp = tempDir('riffle-history-')
      const db = await openDatabase(pg.url, tmp.dir)
      return {
        db,
        url: pg.url,
        dataDir: tmp.dir,
        done: async () => {
          await pg.drop()
          tmp.cleanup()
        },
      }
    },
  },
]

export const T0 = Date.parse('2026-03-01T12:00:00Z')

/** A stream activation for offset `i` of `shop.purchases`, partition i % 3. */
export function activation(
  i: number,
  o: Partial<Omit<Activation, 'id'>> & { status?: ActivationStatus } = {},
): Activation {
  const campaign = o.campaign ?? 'big-spender'
  const version = o.campaignVersion ?? 1
  const source = o.source ?? {
    kind: 'stream' as const,
    topic: 'shop.purchases',
    partition: i % 3,
    offset: String(i),
  }
  const customerKey = o.customerKey ?? `c${i % 10}`
  return {
    id: activationId(campaign, version, source, customerKey),
    campaign,
    campaignVersion: version,
    cell: o.cell ?? 'treatment',
    customerKey,
    source,
    status: o.status ?? 'sent',
    eventTime: o.eventTime === undefined ? T0 + i * 1000 - 50 : o.eventTime,
    outputTime: o.outputTime ?? T0 + i * 1000,
    content: o.content ?? { offer_code: `THX-${i}`, message: 'Thanks, "friend",\nsee you!' },
    deliveries: o.deliveries ?? { 'kafka:campaign.offers': { status: 'ok' } },
    ...(o.reason !== undefined ? { reason: o.reason } : {}),
  }
}

export function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => i + from)
}
