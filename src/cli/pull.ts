/** `riffle pull …`: load files into the Pull Marketing database. */
import { Command, Option } from 'commander'
import type { ConfigOverrides } from '../config.js'
import { riffleError } from '../errors.js'
import { PullCatalog } from '../pull/catalog.js'
import { type LoadFormat, type LoadProgress, loadFile } from '../pull/load.js'
import type { Riffle } from '../runtime.js'

type WithRiffle = <T>(overrides: ConfigOverrides, fn: (r: Riffle) => Promise<T>) => Promise<T>

/** Most bad rows printed one by one; the rest are counted in the summary. */
const MAX_BAD_ROWS_SHOWN = 100

/** A progress bar on a terminal (rewritten in place), a plain line every few seconds otherwise. */
export function loadProgressBar(
  stream: NodeJS.WriteStream = process.stderr,
): (p: LoadProgress, final?: boolean) => void {
  let last = 0
  const started = Date.now()
  return (p, final = false) => {
    const now = Date.now()
    if (!final && now - last < (stream.isTTY ? 100 : 5_000)) return
    last = now
    const frac = p.totalBytes > 0 ? Math.min(1, p.bytesRead / p.totalBytes) : 1
    const rate = Math.round(p.written / Math.max(0.001, (now - started) / 1000))
    const stats = `${p.written} written, ${p.bad} bad, ${rate}/s`
    if (stream.isTTY) {
      const width = 30
      const full = Math.round(frac * width)
      const bar = `${'█'.repeat(full)}${'░'.repeat(width - full)}`
      stream.write(`\r\x1b[2K${bar} ${Math.floor(frac * 100)}% ${stats}${final ? '\n' : ''}`)
    } else {
      stream.write(`loading: ${Math.floor(frac * 100)}% ${stats}\n`)
    }
  }
}

export function pullCommand(withRiffle: WithRiffle, dataDirOption: () => Option): Command {
  const pull = new Command('pull').description('the Pull Marketing database')

  pull
    .command('load <collection> <file>')
    .description(
      'load a CSV (with a header row) or JSON Lines file into a collection; re-running the same file is idempotent',
    )
    .addOption(
      new Option('--format <format>', 'csv or jsonl (default: from the file extension)').choices([
        'csv',
        'jsonl',
      ]),
    )
    .addOption(
      new Option('--on-error <mode>', 'a bad row is skipped (and reported) or stops the load')
        .choices(['skip', 'stop'])
        .default('stop'),
    )
    .option('--key <column>', "the column holding the record key (default: the collection's key)")
    .option('--load-id <id>', 'recorded as the writer, load:<id> (default: the file name)')
    .option('--batch-size <n>', 'records per write batch', '5000')
    .addOption(dataDirOption())
    .action(
      async (
        collection: string,
        file: string,
        o: {
          format?: LoadFormat
          onError: 'skip' | 'stop'
          key?: string
          loadId?: string
          batchSize: string
          dataDir?: string
        },
      ) => {
        const batchSize = Number(o.batchSize)
        if (!Number.isInteger(batchSize) || batchSize < 1)
          throw riffleError(
            'RIFFLE_BAD_REQUEST',
            `--batch-size: "${o.batchSize}" is not a positive whole number`,
          )
        const summary = await withRiffle({ dataDir: o.dataDir }, async (r) => {
          const catalog = new PullCatalog(r.pull, r.defs)
          const c = await catalog.collection(collection)
          if (!c) throw riffleError('RIFFLE_UNKNOWN_COLLECTION', `collection "${collection}" does not exist`)
          const bar = loadProgressBar()
          let last: LoadProgress | undefined
          let shown = 0
          const result = await loadFile(
            { store: r.pull, collection: c },
            {
              file,
              format: o.format,
              onError: o.onError,
              keyField: o.key,
              loadId: o.loadId,
              batchSize,
              onProgress: (p) => {
                last = p
                bar(p)
              },
              onBadRow: (line, message) => {
                if (shown++ < MAX_BAD_ROWS_SHOWN)
                  process.stderr.write(
                    `${process.stderr.isTTY ? '\r\x1b[2K' : ''}${file}:${line}: ${message}\n`,
                  )
              },
            },
          )
          if (last) bar(last, true)
          return result
        })
        const secs = (summary.elapsedMs / 1000).toFixed(1)
        const rate = Math.round(summary.written / Math.max(0.001, summary.elapsedMs / 1000))
        if (summary.stoppedAt !== undefined) {
          process.stderr.write(
            `stopped at line ${summary.stoppedAt}: ${summary.written} rows before it were loaded into "${collection}"; fix the row and run again (loading is idempotent), or use --on-error skip\n`,
          )
          process.exitCode = 1
          return
        }
        const bad = summary.bad ? `, ${summary.bad} bad row${summary.bad === 1 ? '' : 's'} skipped` : ''
        process.stdout.write(
          `loaded ${summary.written} of ${summary.rows} rows into "${collection}"${bad} in ${secs}s (${rate} rows/s) as ${summary.writer}\n`,
        )
      },
    )

  return pull
}
