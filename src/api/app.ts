/** The HTTP transport: a thin Fastify adapter over Riffle's services. */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify'
import type { Registry } from 'prom-client'
import type { KeyStore } from '../auth/keys.js'
import type { DataStore } from '../datastore/store.js'
import type { DefinitionsService } from '../definitions/service.js'
import type { DecisionService } from '../engine/explain.js'
import type { HistoryStore } from '../history/store.js'
import type { Logger } from '../log.js'
import { PullCatalog } from '../pull/catalog.js'
import type { PullStore } from '../pull/store.js'
import type { Scheduler } from '../scheduler/scheduler.js'
import type { IngestService } from '../streams/ingest.js'
import { requireScope } from './auth.js'
import { installErrorHandling, invalidJsonBody } from './errors.js'
import { decisionRoutes, ingestRoutes } from './routes/decisions.js'
import { definitionRoutes } from './routes/definitions.js'
import { healthRoutes, type ReadinessCheck } from './routes/health.js'
import { historyRoutes } from './routes/history.js'
import { pullRoutes } from './routes/pull.js'
import { recordRoutes } from './routes/records.js'
import { runRoutes } from './routes/runs.js'
import { streamToolRoutes } from './routes/stream-tools.js'
import { topicSampleRoutes } from './routes/topic-sample.js'
import { uiRoutes } from './routes/ui.js'
import { whoamiRoutes } from './routes/whoami.js'
import { validatorCompiler } from './validation.js'

export interface AppDeps {
  /** The scheduler and the data store; the run and data store routes are served when both are given. */
  scheduler?: Scheduler
  datastore?: DataStore
  /** Where uploaded data store files wait while they load; the load route is served when given. */
  uploadDir?: string
  log: Logger
  defs: DefinitionsService
  keys: KeyStore
  metrics: Registry
  readiness: ReadinessCheck[]
  brokers: () => Promise<string[]>
  version: string
  /** The output history; its routes are served when given. */
  history?: HistoryStore
  /** The Pull Marketing database; the Pull API and the record admin routes are served when given. */
  pull?: PullStore
  /** Dry runs and traces; their routes are served when given. */
  decisions?: DecisionService
  /** HTTP ingest (`POST /ingest/v1/{stream}`), served when given. */
  ingest?: IngestService
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 4 * 1024 * 1024,
    ajv: { customOptions: { coerceTypes: false } },
    routerOptions: { maxParamLength: 2048 }, // pull record keys: up to 256 characters, percent-encoded
  })
  app.setValidatorCompiler(validatorCompiler)
  installErrorHandling(app, deps.log)
  // Fastify's own JSON parser (which refuses __proto__ keys), but a malformed body's error says
  // where: line and column.
  const json = app.getDefaultJsonParser('error', 'error') as (
    req: FastifyRequest,
    body: string,
    done: (err: Error | null, value?: unknown) => void,
  ) => void
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) =>
    json(req, body as string, (err, value) => {
      if ((err as FastifyError | null)?.code === 'FST_ERR_CTP_INVALID_JSON_BODY')
        done(invalidJsonBody(body as string), undefined)
      else done(err, value)
    }),
  )
  app.addContentTypeParser(
    ['application/yaml', 'application/x-yaml', 'text/yaml'],
    { parseAs: 'string' },
    (_req, body, done) => done(null, body),
  )

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Riffle',
        version: deps.version,
        description:
          'Real-time, event-triggered marketing on Apache Kafka, with a Pull Marketing database. Send `Authorization: Bearer <key>`; create keys with `riffle keys create --scope admin`.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })

  healthRoutes(app, deps.readiness, deps.metrics)
  await uiRoutes(app)

  const pullCatalog = deps.pull ? new PullCatalog(deps.pull, deps.defs) : undefined
  if (pullCatalog) pullRoutes(app, { keys: deps.keys, catalog: pullCatalog })
  if (deps.ingest) ingestRoutes(app, deps.keys, deps.ingest)
  whoamiRoutes(app, deps.keys)
  await app.register(async (admin) => {
    // onRequest: the key is checked before the body is read or validated, so a request without one
    // gets 401 (and one without the scope 403) whatever its body.
    admin.addHook('onRequest', requireScope(deps.keys, 'admin'))
    definitionRoutes(admin, deps.defs)
    streamToolRoutes(admin, { defs: deps.defs, brokers: deps.brokers })
    topicSampleRoutes(admin, { brokers: deps.brokers })
    if (deps.decisions) decisionRoutes(admin, deps.decisions)
    if (deps.history) historyRoutes(admin, deps.history)
    if (deps.scheduler && deps.datastore)
      runRoutes(admin, { scheduler: deps.scheduler, datastore: deps.datastore, uploadDir: deps.uploadDir })
    if (pullCatalog) recordRoutes(admin, pullCatalog)
  })
  return app
}
