/** The `riffle` command line: a thin adapter over the same services the HTTP API uses. */
import { writeFile } from 'node:fs/promises'
import { hostname, userInfo } from 'node:os'
import { Command, Option } from 'commander'
import { stringify } from 'yaml'
import { type ConfigOverrides, loadConfig } from '../config.js'
import { validateFile } from '../definitions/service.js'
import { readDefinitionsFile } from '../definitions/source.js'
import { topicProblem } from '../definitions/validate.js'
import { runDemo } from '../demo/demo.js'
import { formatIssues, isRiffleError, riffleError } from '../errors.js'
import { sampleTopic } from '../kafka/sample.js'
import { createLogger } from '../log.js'
import { openRiffle, packageVersion, type Riffle, resolveKafkaBrokers } from '../runtime.js'
import { startServer } from '../server.js'
import { inferFields } from '../streams/infer.js'
import { historyCommand } from './history.js'
import { pullCommand } from './pull.js'
import { scheduledCommands } from './scheduled.js'

function cliActor(): string {
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {}
  return `cli:${user}@${hostname()}`
}

async function withRiffle<T>(overrides: ConfigOverrides, fn: (r: Riffle) => Promise<T>): Promise<T> {
  const config = loadConfig(process.env, overrides)
  const log = createLogger(process.env.RIFFLE_LOG_LEVEL ?? 'warn', 2)
  const riffle = await openRiffle(config, log)
  try {
    return await fn(riffle)
  } finally {
    await riffle.close()
  }
}

const dataDirOption = () =>
  new Option('--data-dir <dir>', 'data directory (default $RIFFLE_DATA_DIR or ./.riffle/data)')

export function buildCli(): Command {
  const program = new Command()
  program
    .name('riffle')
    .description('Real-time, event-triggered marketing on Apache Kafka, with a Pull Marketing database.')
    .version(packageVersion())
    .showHelpAfterError()

  program
    .command('start')
    .description('run the API, the Pull API, the engine and the scheduler')
    .option('--port <port>', 'HTTP port (default $RIFFLE_PORT or 8080)')
    .addOption(dataDirOption())
    .action(async (o: { port?: string; dataDir?: string }) => {
      await start({ port: o.port, dataDir: o.dataDir })
    })

  program
    .command('demo')
    .description(
      'start Riffle with example definitions, demo profiles and a steady synthetic purchase stream',
    )
    .option('--port <port>', 'HTTP port (default $RIFFLE_PORT or 8080)')
    .addOption(dataDirOption())
    .option('--rate <n>', 'events per second', '20')
    .option('--profiles <n>', 'profiles loaded into the Pull Marketing database', '5000')
    .action(async (o: { port?: string; dataDir?: string; rate: string; profiles: string }) => {
      const rate = Number(o.rate)
      const profiles = Number(o.profiles)
      if (!Number.isFinite(rate) || rate <= 0 || rate > 100_000)
        throw riffleError('RIFFLE_BAD_REQUEST', '--rate must be a number of events per second, 1 to 100000')
      if (!Number.isInteger(profiles) || profiles < 0 || profiles > 10_000_000)
        throw riffleError('RIFFLE_BAD_REQUEST', '--profiles must be a whole number up to 10000000')
      const stop = await runDemo(loadConfig(process.env, { port: o.port, dataDir: o.dataDir }), {
        rate,
        profiles,
      })
      const onSignal = () => void stop().finally(() => process.exit(0))
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
    })

  program
    .command('validate')
    .description('check a definitions file; exits 1 with every problem listed')
    .requiredOption('-f, --file <file>', 'the definitions file (YAML or JSON)')
    .option(
      '--current',
      'validate against the applied definitions (references to what is already applied resolve)',
    )
    .addOption(dataDirOption())
    .action(async (o: { file: string; current?: boolean; dataDir?: string }) => {
      const source = await readDefinitionsFile(o.file)
      const { issues } = o.current
        ? await withRiffle({ dataDir: o.dataDir }, (r) => r.defs.validate(source))
        : validateFile(source)
      if (issues.length) {
        process.stderr.write(
          `${formatIssues(issues)}\n${issues.length} problem${issues.length === 1 ? '' : 's'} found in ${o.file}\n`,
        )
        process.exitCode = 1
        return
      }
      process.stdout.write(`${o.file} is valid\n`)
    })

  program
    .command('apply')
    .description('apply a definitions file: atomic (all or nothing) and idempotent')
    .requiredOption('-f, --file <file>', 'the definitions file (YAML or JSON)')
    .option('--prune', 'delete streams, collections and campaigns that the file no longer has')
    .option('--dry-run', 'validate and show what would change; change nothing')
    .addOption(dataDirOption())
    .action(async (o: { file: string; prune?: boolean; dryRun?: boolean; dataDir?: string }) => {
      const source = await readDefinitionsFile(o.file)
      const s = await withRiffle({ dataDir: o.dataDir }, (r) =>
        r.defs.apply(source, { actor: cliActor(), prune: Boolean(o.prune), dryRun: Boolean(o.dryRun) }),
      )
      const verb = s.dryRun ? 'would be ' : ''
      for (const c of s.created) process.stdout.write(`${verb}created ${c}\n`)
      for (const c of s.updated) process.stdout.write(`${verb}updated ${c}\n`)
      for (const c of s.deleted) process.stdout.write(`${verb}deleted ${c}\n`)
      for (const c of s.resumed)
        process.stderr.write(
          `note: ${c} ${s.dryRun ? 'would be' : 'is'} active again: a file's campaigns are active unless they say status: paused\n`,
        )
      process.stdout.write(
        `${s.dryRun ? 'dry run: ' : ''}${s.created.length} created, ${s.updated.length} updated, ${s.deleted.length} deleted, ${s.unchanged} unchanged (revision ${s.revision})\n`,
      )
    })

  program
    .command('export-defs')
    .description('write the applied definitions as a definitions file (round-trips through apply)')
    .option('-o, --output <file>', 'write to a file instead of standard output')
    .addOption(new Option('--format <format>', 'yaml or json').choices(['yaml', 'json']).default('yaml'))
    .addOption(dataDirOption())
    .action(async (o: { output?: string; format: string; dataDir?: string }) => {
      const defs = await withRiffle({ dataDir: o.dataDir }, (r) => r.defs.exportDefinitions())
      const text =
        o.format === 'json' ? `${JSON.stringify(defs, null, 2)}\n` : stringify(defs, { lineWidth: 0 })
      if (o.output) await writeFile(o.output, text)
      else process.stdout.write(text)
    })

  const keys = program.command('keys').description('API keys with scopes')
  keys
    .command('create')
    .description('create a key; it is printed once, alone on the last line')
    .option(
      '--scope <scope>',
      'admin, ingest, pull:read:<collection> or pull:read:* (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--name <name>', 'a label to recognise the key by')
    .addOption(dataDirOption())
    .action(async (o: { scope: string[]; name?: string; dataDir?: string }) => {
      const { key, apiKey } = await withRiffle({ dataDir: o.dataDir }, (r) => r.keys.create(o.scope, o.name))
      process.stderr.write(
        `created key ${apiKey.id} with scopes ${apiKey.scopes.join(', ')}; store it now, it is not shown again\n`,
      )
      process.stdout.write(`${key}\n`)
    })
  keys
    .command('list')
    .description('list keys (ids and scopes; never the secrets)')
    .addOption(dataDirOption())
    .action(async (o: { dataDir?: string }) => {
      const list = await withRiffle({ dataDir: o.dataDir }, (r) => r.keys.list())
      for (const k of list) {
        process.stdout.write(
          `${k.id}\t${k.scopes.join(',')}\t${k.name ?? ''}\t${k.createdAt}\t${k.revokedAt ? `revoked ${k.revokedAt}` : 'active'}\n`,
        )
      }
    })
  keys
    .command('revoke <id>')
    .description('revoke a key by its id')
    .addOption(dataDirOption())
    .action(async (id: string, o: { dataDir?: string }) => {
      await withRiffle({ dataDir: o.dataDir }, (r) => r.keys.revoke(id))
      process.stdout.write(`revoked ${id}\n`)
    })

  const streams = program.command('streams').description('stream tools')
  streams
    .command('infer <topic>')
    .description('sample a topic and propose a stream definition with typed fields')
    .option('--limit <n>', 'how many of the newest messages to sample', '100')
    .option('--name <name>', 'the stream name to propose (default: the topic, made a valid name)')
    .action(async (topic: string, o: { limit: string; name?: string }) => {
      const problem = topicProblem(topic)
      if (problem) throw riffleError('RIFFLE_BAD_REQUEST', problem)
      const limit = Number(o.limit)
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
        throw riffleError('RIFFLE_BAD_REQUEST', '--limit must be a whole number of messages, 1 to 10000')
      const config = loadConfig()
      const log = createLogger(process.env.RIFFLE_LOG_LEVEL ?? 'warn')
      const brokers = await resolveKafkaBrokers(config, log)
      const sampled = await sampleTopic({ brokers, topic, limit })
      const inferred = inferFields(sampled.map((m) => (m.json === undefined ? m.value : m.json)))
      if (inferred.sampled === 0) {
        process.stderr.write(
          `no JSON object messages found in topic "${topic}" (${inferred.skipped} other messages)\n`,
        )
        process.exitCode = 1
        return
      }
      const name = o.name ?? topic.replace(/[^A-Za-z0-9_-]/g, '-').replace(/^[^A-Za-z0-9]+/, '')
      const stream = {
        name,
        topic,
        format: 'json',
        key: inferred.key ?? 'CHOOSE_A_KEY_FIELD',
        ...(inferred.time ? { time: inferred.time } : {}),
        fields: inferred.fields,
      }
      process.stderr.write(
        `sampled ${inferred.sampled} messages (${inferred.skipped} skipped); review the proposal before applying it\n`,
      )
      process.stdout.write(stringify({ streams: [stream] }, { lineWidth: 0 }))
    })

  program.addCommand(historyCommand(withRiffle, dataDirOption))
  program.addCommand(pullCommand(withRiffle, dataDirOption))
  for (const c of scheduledCommands(withRiffle, dataDirOption)) program.addCommand(c)

  return program
}

async function start(overrides: ConfigOverrides): Promise<void> {
  const server = await startServer(loadConfig(process.env, overrides))
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    server.log.info({ signal }, 'stopping')
    await server.close()
    process.exit(0)
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildCli().parseAsync(argv)
  } catch (e) {
    if (isRiffleError(e)) {
      process.stderr.write(`riffle: ${e.code}: ${e.message}\n`)
      process.exitCode = e.code === 'RIFFLE_CONFIG' ? 2 : 1
    } else {
      process.stderr.write(`riffle: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
      process.exitCode = 1
    }
  }
}
