/**
 * The better-sqlite3 build this Node.js can run. better-sqlite3 12 is built on node::ObjectWrap,
 * whose header in Node.js 24.19 and later registers environment cleanup hooks: an addon compiled
 * against those headers aborts the process when a statement is garbage-collected
 * (`Assertion failed: (env) != nullptr`, nodejs/node#65446). better-sqlite3 13 uses Node-API and
 * does not, but needs Node-API 10 (Node.js 22; on Node.js 20 it crashes). So: 13 (installed as
 * `better-sqlite3-napi`) on Node.js 24 and later, 12 before; each falls back to the other.
 */
import { createRequire } from 'node:module'
import type BetterSqlite3 from 'better-sqlite3'

const require = createRequire(import.meta.url)

function load(): typeof BetterSqlite3 {
  const major = Number(process.versions.node.split('.')[0])
  const order =
    major >= 24 ? ['better-sqlite3-napi', 'better-sqlite3'] : ['better-sqlite3', 'better-sqlite3-napi']
  const failures: string[] = []
  for (const name of order) {
    try {
      return require(name) as typeof BetterSqlite3
    } catch (e) {
      failures.push(`${name}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`)
    }
  }
  throw new Error(`no SQLite driver loads on Node.js ${process.versions.node}: ${failures.join('; ')}`)
}

const Sqlite: typeof BetterSqlite3 = load()
// the driver's types, as `import Sqlite from 'better-sqlite3'` gives them
declare namespace Sqlite {
  type Database = BetterSqlite3.Database
  type Statement<
    BindParameters extends unknown[] | object = unknown[],
    Result = unknown,
  > = BetterSqlite3.Statement<BindParameters, Result>
  type Options = BetterSqlite3.Options
}
export default Sqlite
