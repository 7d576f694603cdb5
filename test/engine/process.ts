/** Engine processes for crash and rebalance tests: the real `riffle start`, as a child. */
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../../bin/riffle.js', import.meta.url))

export interface RiffleProcess {
  child: ChildProcess
  kill(signal?: NodeJS.Signals): Promise<void>
}

export function spawnRiffle(env: Record<string, string>, logFile: string): RiffleProcess {
  const child = spawn(process.execPath, [BIN, 'start', '--port', '0'], {
    env: { ...process.env, RIFFLE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const log = createWriteStream(logFile, { flags: 'a' })
  child.stdout!.pipe(log)
  child.stderr!.pipe(log)
  return {
    child,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const done = new Promise((r) => child.once('exit', r))
      child.kill(signal)
      await done
    },
  }
}
