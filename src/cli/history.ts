/** `riffle history …`: export the output history, manage export consumers, run retention. */
import { Command, Option } from 'commander'
import type { ConfigOverrides } from '../config.js'
import { riffleError } from '../errors.js'
import { EXPORT_FORMATS, type ExportFormat, type ExportProgress, exportHistory } from '../history/export.js'
import { parseTimeRange } from '../history/query.js'
import { HistoryRetention } from '../history/retention.js'
import type { Riffle } from '../runtime.js'

type WithRiffle = <T>(overrides: ConfigOverrides, fn: (r: Riffle) => Promise<T>) => Promise<T>

/** Progress on standard error: a line rewritten in place on a terminal, a line a second otherwise. */
export function progressReporter(stream: NodeJS.WriteStream = process.stderr): (p: ExportProgress) => void {
  let last = 0
  let printed = false
  return (p) => {
    const now = Date.now()
    if (p.stage === 'reading' && printed && now - last < (stream.isTTY ? 100 : 1000)) return
    last = now
    printed = true
    const pct = p.total > 0 ? ` (${Math.floor((p.done / p.total) * 100)}%)` : ''
    const text =
      p.stage === 'parquet'
        ? `read ${p.done} records; writing Parquet…`
        : p.stage === 'done'
          ? `exported ${p.done} records`
          : `exporting: ${p.done}/${p.total} records${pct}`
    if (stream.isTTY) stream.write(`\r\x1b[2K${text}${p.stage === 'done' ? '\n' : ''}`)
    else stream.write(`${text}\n`)
  }
}

function positiveInt(name: string) {
  return (v: string) => {
    const n = Number(v)
    if (!/^\d+$/.test(v) || n < 1)
      throw riffleError('RIFFLE_BAD_REQUEST', `${name}: "${v}" is not a positive whole number`)
    return n
  }
}

export function historyCommand(withRiffle: WithRiffle, dataDirOption: () => Option): Command {
  const history = new Command('history').description(
    'the output history: every activation, kept for loading into master data stores',
  )

  history
    .command('export')
    .description(
      'export the output history as CSV, JSON Lines or Parquet; with --consumer, only what that consumer has not taken yet',
    )
    .addOption(
      new Option('--format <format>', 'csv, jsonl or parquet')
        .choices([...EXPORT_FORMATS])
        .makeOptionMandatory(),
    )
    .option(
      '-o, --output <path>',
      'the file to write (default: standard output; Parquet needs a file); with --consumer, a directory',
    )
    .option(
      '--since <time>',
      'output time from: 2026-01-31, 2026-01-31T08:00:00Z, or a duration ago (24h, 7d)',
    )
    .option('--until <time>', 'output time until (exclusive); same forms as --since')
    .option('--campaign <name>', 'only this campaign')
    .option(
      '--consumer <name>',
      'incremental: export each record once to this registered consumer, keeping its watermark',
    )
    .option('--register', 'with --consumer: register the consumer if it is not registered yet')
    .option(
      '--max-records <n>',
      'with --consumer: take at most this many records in this run',
      positiveInt('--max-records'),
    )
    .option('--quiet', 'no progress on standard error')
    .addOption(dataDirOption())
    .action(
      async (o: {
        format: ExportFormat
        output?: string
        since?: string
        until?: string
        campaign?: string
        consumer?: string
        register?: boolean
        maxRecords?: number
        quiet?: boolean
        dataDir?: string
      }) => {
        const range = parseTimeRange(o.since, o.until)
        if (o.register && !o.consumer)
          throw riffleError('RIFFLE_BAD_REQUEST', '--register needs --consumer NAME')
        if (o.maxRecords !== undefined && !o.consumer)
          throw riffleError('RIFFLE_BAD_REQUEST', '--max-records needs --consumer NAME')
        // `… | head`: a reader that stops early ends the export quietly (there is no watermark to keep)
        if (o.output === undefined)
          process.stdout.on('error', (e: NodeJS.ErrnoException) => {
            if (e.code === 'EPIPE') process.exit(0)
          })
        const result = await withRiffle({ dataDir: o.dataDir }, (r) =>
          exportHistory(r.history, {
            format: o.format,
            ...(o.output !== undefined ? { output: o.output } : {}),
            ...range,
            ...(o.campaign !== undefined ? { campaign: o.campaign } : {}),
            ...(o.consumer !== undefined ? { consumer: o.consumer } : {}),
            ...(o.register ? { register: true } : {}),
            ...(o.maxRecords !== undefined ? { maxRecords: o.maxRecords } : {}),
            ...(o.quiet ? {} : { onProgress: progressReporter() }),
          }),
        )
        if (result.file) {
          process.stderr.write(
            `wrote ${result.records} records to ${result.file}${result.range ? ` (records ${result.range.from + 1}-${result.range.to})` : ''}\n`,
          )
          process.stdout.write(`${result.file}\n`)
        } else if (o.consumer) {
          process.stderr.write(`nothing new for consumer ${o.consumer}\n`)
        }
      },
    )

  const consumers = history
    .command('consumers')
    .description('export consumers: each keeps a watermark, and retention waits for all of them')
  consumers
    .command('add <name>')
    .description('register an export consumer; it starts with the oldest record kept')
    .option('--from-now', 'start after the newest record instead: skip what the history holds now')
    .addOption(dataDirOption())
    .action(async (name: string, o: { fromNow?: boolean; dataDir?: string }) => {
      const c = await withRiffle({ dataDir: o.dataDir }, (r) =>
        r.history.addConsumer(name, { fromNow: Boolean(o.fromNow) }),
      )
      process.stdout.write(`registered export consumer ${c.name} (watermark ${c.watermark})\n`)
    })
  consumers
    .command('list')
    .description('list export consumers: watermark, records not yet exported, last export')
    .addOption(dataDirOption())
    .action(async (o: { dataDir?: string }) => {
      const rows = await withRiffle({ dataDir: o.dataDir }, async (r) => {
        const lag = await r.history.consumerLag()
        return (await r.history.listConsumers()).map((c) => ({ ...c, lag: lag.get(c.name) ?? 0 }))
      })
      process.stdout.write('name\twatermark\tbehind\tpending\tlast_export\texported\n')
      for (const c of rows) {
        process.stdout.write(
          `${c.name}\t${c.watermark}\t${c.lag}\t${c.pendingTo === null ? '' : `${c.watermark + 1}-${c.pendingTo}`}\t${c.lastExportAt === null ? 'never' : new Date(c.lastExportAt).toISOString()}\t${c.exported}\n`,
        )
      }
    })
  consumers
    .command('remove <name>')
    .description('remove an export consumer: retention stops waiting for it')
    .addOption(dataDirOption())
    .action(async (name: string, o: { dataDir?: string }) => {
      await withRiffle({ dataDir: o.dataDir }, (r) => r.history.removeConsumer(name))
      process.stdout.write(`removed export consumer ${name}\n`)
    })

  history
    .command('purge')
    .description(
      'apply retention now (RIFFLE_HISTORY_RETENTION_DAYS): delete older records every consumer has exported',
    )
    .addOption(dataDirOption())
    .action(async (o: { dataDir?: string }) => {
      const result = await withRiffle({ dataDir: o.dataDir }, (r) =>
        new HistoryRetention({ store: r.history, days: r.config.historyRetentionDays, log: r.log }).purge(),
      )
      process.stdout.write(`purged ${result.purged} records\n`)
      if (result.blocked > 0) {
        process.stderr.write(
          `${result.blocked} older records kept: not yet exported by ${result.blockedBy.join(', ')}\n`,
        )
      }
    })

  return history
}
