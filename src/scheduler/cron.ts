/**
 * Schedule arithmetic for cron triggers with IANA time zones (croner). Daylight-saving rules:
 * a local time that does not exist (spring forward) fires once, at the first instant after the
 * gap (01:30 on Europe/London's 2026-03-29 runs at 02:00 BST); a local time that occurs twice
 * (fall back) fires once, at its first occurrence (01:30 BST on 2026-10-25). Interval schedules
 * such as hourly keep firing every real hour.
 */
import { Cron } from 'croner'
import { riffleError } from '../errors.js'

export function parseSchedule(schedule: string, timezone = 'UTC'): Cron {
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone })
  } catch {
    throw riffleError('RIFFLE_BAD_REQUEST', `invalid time zone "${timezone}": not an IANA time zone name`)
  }
  try {
    return new Cron(schedule, { timezone, paused: true })
  } catch (e) {
    throw riffleError('RIFFLE_BAD_REQUEST', `invalid cron expression "${schedule}": ${(e as Error).message}`)
  }
}

/** The next `n` scheduled times strictly after `after`. */
export function nextRuns(schedule: string, timezone: string | undefined, after: Date, n = 1): Date[] {
  return parseSchedule(schedule, timezone).nextRuns(n, after)
}

/** The latest scheduled time in (since, now], or undefined. */
export function latestDue(
  schedule: string,
  timezone: string | undefined,
  since: number,
  now: number,
): number | undefined {
  const prev = parseSchedule(schedule, timezone).previousRuns(1, new Date(now + 1))[0]
  if (!prev) return undefined
  const t = prev.getTime()
  return t > since && t <= now ? t : undefined
}
