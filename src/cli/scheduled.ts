/** `riffle datastore load|query|tables`, `riffle run CAMPAIGN` and `riffle runs list|show`. */
import { Command, type Option } from 'commander'
import type { ConfigOverrides } from '../config.js'
import { openDataStore } from '../datastore/store.js'
import { TargetPolicy } from '../engine/ssrf.js'
import { WebhookSender } from '../engine/webhook.js'
import type { Riffle } from '../runtime.js'
import { resolveKafkaBrokers } from '../runtime.js'
import type { RunRecord } from '../scheduler/runs.js'
import { Scheduler } from '../scheduler/scheduler.js'

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
    .description('load a CSV or Parquet file into a table (replacing it); shows progress and the row count')
    .option('--append', 'append to the table instead of replacing it')
    .addOption(dataDirOption())
    .action(async (table: string, file: string, o: { append?: boolean; dataDir?: string }) => {
      await withRiffle({ dataDir: o.dataDir }, async (r) => {
        const store = await openDataStore(r.config.datastoreUrl, r.config.dataDir)
        const started = Date.now()
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
        const store = await openDataStore(r.config.datastoreUrl, r.config.dataDir)
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
        const store = await openDataStore(r.config.datastoreUrl, r.config.dataDir)
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
        const datastore = await openDataStore(r.config.datastoreUrl, r.config.dataDir)
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
