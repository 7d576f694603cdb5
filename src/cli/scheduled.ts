/** `riffle datastore load|query|tables`, `riffle run CAMPAIGN` and `riffle runs list|show`. */
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { Readable } from 'node:stream'
import { Command, type Option } from 'commander'
import type { ConfigOverrides } from '../config.js'
import { openDataStore } from '../datastore/store.js'
import { TargetPolicy } from '../engine/ssrf.js'
import { WebhookSender } from '../engine/webhook.js'
import { ERRORS, riffleError } from '../errors.js'
import type { Riffle } from '../runtime.js'
import { resolveKafkaBrokers } from '../runtime.js'
import type { RunRecord } from '../scheduler/runs.js'
import { Scheduler } from '../scheduler/scheduler.js'
import { SERVER_MARKER } from '../server.js'

type WithRiffle = <T>(overrides: ConfigOverrides, fn: (r: Riffle) => Promise<T>) => Promise<T>

function line(run: RunRecord): string {
  const pct = run.rowsSelected ? ` (${Math.floor((run.rowsDone / run.rowsSelected) * 100)}%)` : ''
  return `${run.id}\t${run.status}\t${run.trigger}\t${new Date(run.createdAt).toISOString()}\trows ${run.rowsDone}/${run.rowsSelected ?? '?'}${pct}\tsent ${run.activations.sent ?? 0}`
}

export function scheduledCommands(withRiffle: WithRiffle, dataDirOption: () => Option): Command[] {
  const ds = new Command('datastore').description(
    'the analytical data store (audiences of scheduled campaigns)',
  )
  ds.command('load <table> <file>')
    .description(
      'load a CSV or Parquet file into a table (replacing it); shows progress and the row count. While `riffle start` runs on the same data directory with the DuckDB data store, the file is sent to it (POST /api/v1/datastore/tables/{table}/load) with the key in RIFFLE_API_KEY or --key',
    )
    .option('--append', 'append to the table instead of replacing it')
    .option(
      '--key <key>',
      'an API key with the admin scope, to load through a running server (default $RIFFLE_API_KEY)',
    )
    .addOption(dataDirOption())
    .action(async (table: string, file: string, o: { append?: boolean; key?: string; dataDir?: string }) => {
      await withRiffle({ dataDir: o.dataDir }, async (r) => {
        const started = Date.now()
        const server = r.config.datastoreUrl.startsWith('duckdb:')
          ? await runningServer(r.config.dataDir)
          : undefined
        if (server) {
          const key = o.key ?? process.env.RIFFLE_API_KEY
          if (!key)
            throw riffleError(
              'RIFFLE_CONFLICT',
              `riffle start (PID ${server.pid}, ${server.url}) is running on this data directory and holds its DuckDB data store, which one process at a time may open; to load through it, set RIFFLE_API_KEY to a key with the admin scope (riffle keys create --scope admin) and run this again, or stop it first`,
            )
          const { rows } = await loadThroughServer(server.url, key, table, file, Boolean(o.append))
          process.stdout.write(
            `loaded ${rows} rows into ${table} in ${((Date.now() - started) / 1000).toFixed(1)} s (through riffle start at ${server.url})\n`,
          )
          return
        }
        const store = await openDataStore(r.config.datastoreUrl, r.config.dataDir, {
          allowFileAccess: r.config.datastoreAllowFileAccess,
        })
        try {
          const { rows } = await store.load(table, file, {
            replace: !o.append,
            onProgress: (p) => {
              if (process.stderr.isTTY)
                process.stderr.write(
                  `\rloading ${file}: ${p.rows} rows${p.percent >= 0 ? ` ${p.percent.toFixed(0)}%` : ''}   `,
                )
            },
          })
          if (process.stderr.isTTY) process.stderr.write('\n')
          process.stdout.write(
            `loaded ${rows} rows into ${table} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
          )
        } finally {
          await store.close()
        }
      })
    })
  ds.command('query <sql>')
    .description('run a read-only query (administrators); prints tab-separated rows')
    .option('--limit <n>', 'most rows to print', '1000')
    .addOption(dataDirOption())
    .action(async (sql: string, o: { limit: string; dataDir?: string }) => {
      await withRiffle({ dataDir: o.dataDir }, async (r) => {
        const store = await openDataStore(r.config.datastoreUrl, r.config.dataDir, {
          allowFileAccess: r.config.datastoreAllowFileAccess,
        })
        const limit = Number(o.limit) || 1000
        let n = 0
        try {
          for await (const b of store.query(sql)) {
            if (n === 0) process.stdout.write(`${b.columns.map((c) => c.name).join('\t')}\n`)
            for (const row of b.rows) {
              if (n++ >= limit) break
              process.stdout.write(
                `${b.columns
                  .map((c) => {
                    const v = row[c.name]
                    return v instanceof Date ? v.toISOString() : String(v ?? '')
                  })
                  .join('\t')}\n`,
              )
            }
            if (n >= limit) break
          }
          if (n === 0) process.stdout.write('(no rows)\n')
        } finally {
          await store.close()
        }
      })
    })
  ds.command('tables')
    .description('list tables with their columns and types')
    .addOption(dataDirOption())
    .action(async (o: { dataDir?: string }) => {
      await withRiffle({ dataDir: o.dataDir }, async (r) => {
        const store = await openDataStore(r.config.datastoreUrl, r.config.dataDir, {
          allowFileAccess: r.config.datastoreAllowFileAccess,
        })
        try {
          for (const t of await store.tables())
            process.stdout.write(`${t.name}\t${t.columns.map((c) => `${c.name} ${c.type}`).join(', ')}\n`)
        } finally {
          await store.close()
        }
      })
    })

  const run = new Command('run')
    .description('run a scheduled or manual campaign now, in this process, showing progress')
    .argument('<campaign>')
    .option('--batch <n>', 'rows per batch', '5000')
    .addOption(dataDirOption())
    .action(async (name: string, o: { batch: string; dataDir?: string }) => {
      await withRiffle({ dataDir: o.dataDir }, async (r) => {
        const datastore = await openDataStore(r.config.datastoreUrl, r.config.dataDir, {
          allowFileAccess: r.config.datastoreAllowFileAccess,
        })
        const webhooks = new WebhookSender(new TargetPolicy(r.config.engine.webhookAllow))
        const scheduler = await Scheduler.open(
          {
            db: r.db,
            defs: r.defs,
            datastore,
            pull: r.pull,
            history: r.history,
            webhooks,
            log: r.log,
            brokers: () => resolveKafkaBrokers(r.config, r.log),
            historyTopic: r.config.historyTopic,
          },
          { owner: `cli-${process.pid}`, batchSize: Number(o.batch) || 5000 },
        )
        scheduler.onProgress = (run) => process.stderr.write(`${line(run)}\n`)
        try {
          const { run, done } = await scheduler.runNow(name)
          process.stderr.write(`run ${run.id} started\n`)
          const end = await done
          process.stdout.write(`${JSON.stringify(end, null, 2)}\n`)
          if (end.status !== 'succeeded') process.exitCode = 1
        } finally {
          await scheduler.stop()
          await webhooks.close()
          await datastore.close()
        }
      })
    })

  const runs = new Command('runs').description('run records of scheduled and manual campaigns')
  runs
    .command('list')
    .description('newest first')
    .option('--campaign <name>')
    .option('--status <status>', 'running, succeeded, failed or skipped')
    .option('--limit <n>', 'most runs', '50')
    .addOption(dataDirOption())
    .action(async (o: { campaign?: string; status?: string; limit: string; dataDir?: string }) => {
      await withRiffle({ dataDir: o.dataDir }, async (r) => {
        const { RunStore } = await import('../scheduler/runs.js')
        const store = await RunStore.open(r.db)
        const list = await store.list({
          campaign: o.campaign,
          status: o.status,
          limit: Number(o.limit) || 50,
        })
        for (const run of list) process.stdout.write(`${line(run)}\n`)
      })
    })
  runs
    .command('show <id>')
    .description('one run as JSON: status, times, rows, activations, outputs per channel, errors')
    .addOption(dataDirOption())
    .action(async (id: string, o: { dataDir?: string }) => {
      await withRiffle({ dataDir: o.dataDir }, async (r) => {
        const { RunStore } = await import('../scheduler/runs.js')
        const store = await RunStore.open(r.db)
        process.stdout.write(`${JSON.stringify(await store.get(id), null, 2)}\n`)
      })
    })
  return [ds, run, runs]
}

/** The `riffle start` named by the data directory's marker, when that process is alive. */
async function runningServer(dataDir: string): Promise<{ pid: number; url: string } | undefined> {
  let marker: { pid?: unknown; url?: unknown; datastore?: unknown }
  try {
    marker = JSON.parse(await readFile(join(dataDir, SERVER_MARKER), 'utf8'))
  } catch {
    return undefined
  }
  if (typeof marker.pid !== 'number' || typeof marker.url !== 'string' || marker.datastore !== 'duckdb')
    return undefined
  try {
    process.kill(marker.pid, 0)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return undefined // it died without cleaning up
  }
  return { pid: marker.pid, url: marker.url }
}

/** Streams the file to the server's load route, showing the bytes sent on a terminal. */
async function loadThroughServer(
  url: string,
  key: string,
  table: string,
  file: string,
  append: boolean,
): Promise<{ rows: number }> {
  let size: number
  try {
    size = (await stat(file)).size
  } catch (e) {
    throw riffleError('RIFFLE_BAD_REQUEST', `cannot load ${file} into ${table}: ${(e as Error).message}`)
  }
  let sent = 0
  const body = createReadStream(file)
  body.on('data', (chunk) => {
    sent += chunk.length
    if (process.stderr.isTTY)
      process.stderr.write(`\rsending ${file} to ${url}: ${Math.floor((sent / Math.max(size, 1)) * 100)}%   `)
  })
  const qs = new URLSearchParams({ file: basename(file), ...(append ? { append: 'true' } : {}) })
  let res: Response
  try {
    res = await fetch(`${url}/api/v1/datastore/tables/${encodeURIComponent(table)}/load?${qs}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' },
      body: Readable.toWeb(body) as ReadableStream,
      duplex: 'half',
    } as RequestInit)
  } catch (e) {
    throw riffleError(
      'RIFFLE_STORE_UNAVAILABLE',
      `riffle start at ${url} holds the data store but does not answer: ${(e as Error).message}`,
    )
  }
  if (process.stderr.isTTY) process.stderr.write('\n')
  const answer = (await res.json().catch(() => ({}))) as {
    rows?: number
    error?: { code?: string; message?: string }
  }
  if (!res.ok) {
    const code = (answer.error?.code ?? 'RIFFLE_INTERNAL') as Parameters<typeof riffleError>[0]
    throw riffleError(
      code in ERRORS ? code : 'RIFFLE_INTERNAL',
      `riffle start at ${url}: ${answer.error?.message ?? `HTTP ${res.status}`}`,
    )
  }
  return { rows: Number(answer.rows) }
}
