/**
 * A child process for the export crash tests. `cli …args`: runs the real `riffle` command line.
 * `crash-at <stage> <dataDir> <databaseUrl> <dir> <format>`: runs an incremental export for consumer
 * `crm-loader` and kills itself with SIGKILL right after that stage.
 */
import { loadConfig } from '../../src/config.js'
import { exportHistory } from '../../src/history/export.js'
import { createLogger } from '../../src/log.js'
import { openRiffle } from '../../src/runtime.js'

const [mode, ...rest] = process.argv.slice(2)
if (mode === 'cli') {
  const { main } = await import('../../src/cli/main.js')
  await main([process.argv[0]!, 'riffle', ...rest])
} else if (mode === 'crash-at') {
  const [stage, dataDir, databaseUrl, dir, format] = rest
  const riffle = await openRiffle(
    loadConfig({ RIFFLE_DATA_DIR: dataDir!, RIFFLE_DATABASE_URL: databaseUrl! }),
    createLogger('silent'),
  )
  await exportHistory(riffle.history, {
    format: format as 'csv',
    output: dir!,
    consumer: 'crm-loader',
    onStage: (s) => {
      if (s === stage) process.kill(process.pid, 'SIGKILL')
    },
  })
  await riffle.close()
} else {
  process.stderr.write(`unknown mode ${mode}\n`)
  process.exitCode = 2
}
