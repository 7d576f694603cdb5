/**
 * The settings of every connection to one of Riffle's own SQLite files, on any thread: write-ahead
 * log, commits that survive a process crash (not a power cut), and a wait of up to 5 s for the
 * write lock instead of an immediate SQLITE_BUSY. A module of its own, so that worker threads can
 * use it without loading the rest of db/.
 */
export const CONNECTION_PRAGMAS: readonly string[] = [
  'journal_mode = WAL',
  'synchronous = NORMAL',
  'busy_timeout = 5000',
]
