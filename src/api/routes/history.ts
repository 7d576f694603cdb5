/** The output history over HTTP: filtered, cursor-paged reads and the per-customer view. */
import type { FastifyInstance } from 'fastify'
import Type from 'typebox'
import { parseStatuses, parseTimeRange } from '../../history/query.js'
import { HistoryRecord, toRecord } from '../../history/schema.js'
import { type HistoryStore, MAX_PAGE } from '../../history/store.js'

const PagingQuery = {
  since: Type.Optional(
    Type.String({
      description:
        'Output time from (inclusive): ISO 8601 date or date-time with a zone, or a duration ago such as `24h` or `7d`.',
    }),
  ),
  until: Type.Optional(Type.String({ description: 'Output time until (exclusive); same forms as `since`.' })),
  status: Type.Optional(
    Type.String({
      description: 'Comma-separated statuses: sent, holdout, suppressed, expired, failed, error.',
    }),
  ),
  cursor: Type.Optional(Type.String({ description: 'The `nextCursor` of the previous page.' })),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 100, description: 'Records per page.' }),
  ),
}

const ListQuery = Type.Object({
  campaign: Type.Optional(Type.String({ minLength: 1, description: 'Only this campaign.' })),
  customerKey: Type.Optional(Type.String({ minLength: 1, description: 'Only this customer.' })),
  ...PagingQuery,
})

const CustomerQuery = Type.Object({
  campaign: Type.Optional(Type.String({ minLength: 1, description: 'Only this campaign.' })),
  ...PagingQuery,
})

const Page = Type.Object({
  items: Type.Array(HistoryRecord),
  nextCursor: Type.Union([Type.String(), Type.Null()], {
    description: 'Pass as `cursor` for the next page; null on the last page.',
  }),
})

interface ListQueryT {
  campaign?: string
  customerKey?: string
  since?: string
  until?: string
  status?: string
  cursor?: string
  limit?: number
}

async function page(history: HistoryStore, q: ListQueryT) {
  const range = parseTimeRange(q.since, q.until)
  const statuses = parseStatuses(q.status)
  const result = await history.list(
    {
      ...range,
      ...(q.campaign !== undefined ? { campaign: q.campaign } : {}),
      ...(q.customerKey !== undefined ? { customerKey: q.customerKey } : {}),
      ...(statuses ? { statuses } : {}),
    },
    { ...(q.cursor !== undefined ? { cursor: q.cursor } : {}), limit: q.limit ?? 100 },
  )
  return { items: result.items.map(toRecord), nextCursor: result.nextCursor }
}

export function historyRoutes(app: FastifyInstance, history: HistoryStore): void {
  const tags = ['history']
  app.get(
    '/api/v1/history',
    {
      schema: {
        tags,
        summary: 'Output history: every activation, newest first',
        description:
          'Filter by campaign, customer key, output time range and status; page with `cursor`. Times are on the output time.',
        querystring: ListQuery,
        response: { 200: Page },
      },
    },
    async (req) => page(history, req.query as ListQueryT),
  )
  app.get(
    '/api/v1/history/customers/:key',
    {
      schema: {
        tags,
        summary: 'What was sent to one customer, and when',
        description:
          'Every activation for this customer key, newest first, holdout and suppressed included (filter with `status=sent`).',
        params: Type.Object({ key: Type.String({ minLength: 1 }) }),
        querystring: CustomerQuery,
        response: { 200: Type.Object({ customerKey: Type.String(), ...Page.properties }) },
      },
    },
    async (req) => {
      const { key } = req.params as { key: string }
      return {
        customerKey: key,
        ...(await page(history, { ...(req.query as ListQueryT), customerKey: key })),
      }
    },
  )
}
