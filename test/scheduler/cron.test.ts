import assert from 'node:assert/strict'
import { test } from 'node:test'
import { latestDue, nextRuns, parseSchedule } from '../../src/scheduler/cron.js'

const iso = (d: Date[]) => d.map((x) => x.toISOString())

test('spring forward, Europe/London 2026-03-29: 01:30 (which does not exist) runs once, at 02:00 BST', () => {
  assert.deepEqual(iso(nextRuns('30 1 * * *', 'Europe/London', new Date('2026-03-27T12:00:00Z'), 3)), [
    '2026-03-28T01:30:00.000Z', // 01:30 GMT
    '2026-03-29T01:00:00.000Z', // 02:00 BST, the first instant after the gap
    '2026-03-30T00:30:00.000Z', // 01:30 BST
  ])
  // a daily 09:00 keeps local time across the change: 09:00 GMT, then 09:00 BST
  assert.deepEqual(iso(nextRuns('0 9 * * *', 'Europe/London', new Date('2026-03-28T00:00:00Z'), 2)), [
    '2026-03-28T09:00:00.000Z',
    '2026-03-29T08:00:00.000Z',
  ])
})

test('fall back, Europe/London 2026-10-25: 01:30 (which occurs twice) runs once, at its first occurrence', () => {
  assert.deepEqual(iso(nextRuns('30 1 * * *', 'Europe/London', new Date('2026-10-23T12:00:00Z'), 3)), [
    '2026-10-24T00:30:00.000Z',
    '2026-10-25T00:30:00.000Z', // 01:30 BST; 01:30 GMT an hour later does not run again
    '2026-10-26T01:30:00.000Z',
  ])
  // hourly keeps one run per real hour: 01:00 BST and 01:00 GMT both run
  assert.deepEqual(iso(nextRuns('0 * * * *', 'Europe/London', new Date('2026-10-24T23:30:00Z'), 3)), [
    '2026-10-25T00:00:00.000Z',
    '2026-10-25T01:00:00.000Z',
    '2026-10-25T02:00:00.000Z',
  ])
})

test('latestDue finds the latest scheduled time in the window, and nothing older than the window', () => {
  const now = Date.parse('2026-03-29T05:00:00Z')
  assert.equal(
    latestDue('30 1 * * *', 'Europe/London', now - 6 * 3600_000, now),
    Date.parse('2026-03-29T01:00:00Z'),
  )
  assert.equal(latestDue('30 1 * * *', 'Europe/London', now - 3600_000, now), undefined)
})

test('an invalid cron expression or time zone is an error that names it', () => {
  assert.throws(() => parseSchedule('61 * * * *', 'UTC'), /invalid cron expression "61 \* \* \* \*"/)
  assert.throws(() => parseSchedule('0 2 * * *', 'Europe/Londn'), /invalid time zone "Europe\/Londn"/)
})
