/**
 * The web UI, end to end: a real `riffle start` with real Kafka, driven through Debian's chromium.
 * Define a stream from a live sample, build a campaign in the designer, activate it, produce an
 * event, and see the activation in monitoring and history. Then build a scheduled campaign over a
 * data store table, run it from the UI and watch its progress. Every page is checked with axe-core
 * (no serious or critical violation) and for console errors. Screenshots go to test-results/ui/.
 */
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Browser, chromium, type Page } from 'playwright-core'
import { loadConfig } from '../../src/config.js'
import { openDataStore } from '../../src/datastore/store.js'
import { createLogger } from '../../src/log.js'
import { openRiffle } from '../../src/runtime.js'
import { createTopic, produce, waitFor } from '../engine/harness.js'
import { type RiffleProcess, spawnRiffle } from '../engine/process.js'
import { kafkaBrokers, tempDir, uniqueName } from '../helpers.js'

const SHOTS = join(process.cwd(), 'test-results', 'ui')
const CHROMIUM = process.env.RIFFLE_CHROMIUM ?? '/usr/bin/chromium'
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

/** The data store table of the scheduled campaign: enough rows for a run to take a few seconds. */
const TABLE = `ui_customers_${Math.random().toString(36).slice(2, 8)}`
const ROWS = 200_000

let proc: RiffleProcess | undefined
let browser: Browser | undefined
const tmp = tempDir('riffle-ui-')

after(async () => {
  await browser?.close()
  await proc?.kill('SIGTERM')
  tmp.cleanup()
})

async function startRiffle(env: Record<string, string>, logFile: string): Promise<string> {
  proc = spawnRiffle(env, logFile)
  return waitFor(
    'riffle listening',
    async () => {
      const m = /riffle listening on (http:\/\/[^\s"]+?) \(/.exec(readFileSync(logFile, 'utf8'))
      return m?.[1]
    },
    60_000,
  ).catch((e) => {
    throw new Error(
      `${(e as Error).message}\n--- log tail ---\n${readFileSync(logFile, 'utf8').slice(-3000)}`,
    )
  })
}

let url = ''
let adminKey = ''
before(async () => {
  mkdirSync(SHOTS, { recursive: true })
  const env = { RIFFLE_DATA_DIR: tmp.dir, RIFFLE_KAFKA_BROKERS: kafkaBrokers().join(',') }
  const config = loadConfig(env)
  const riffle = await openRiffle(config, createLogger('silent'))
  adminKey = (await riffle.keys.create(['admin'], 'ui e2e')).key
  await riffle.close()
  const csv = join(tmp.dir, `${TABLE}.csv`)
  const segments = ['gold', 'silver', 'bronze']
  const lines = ['customer_id,segment,spend']
  for (let i = 0; i < ROWS; i++) lines.push(`s${i},${segments[i % 3]},${(i % 1000) + 0.5}`)
  writeFileSync(csv, `${lines.join('\n')}\n`)
  const store = await openDataStore(config.datastoreUrl, config.dataDir)
  assert.equal((await store.load(TABLE, csv)).rows, ROWS)
  await store.close()
  url = (await startRiffle(env, join(tmp.dir, 'riffle.log'))).replace('0.0.0.0', '127.0.0.1')
  await waitFor('ready', async () => (await fetch(`${url}/readyz`)).ok, 60_000)
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
})

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
}

interface AxeViolation {
  id: string
  impact: string | null
  help: string
  nodes: Array<{ target: unknown[]; failureSummary?: string }>
}

/** Runs axe-core on the page as it is now; fails on any serious or critical violation. */
async function accessible(page: Page, what: string): Promise<void> {
  if (!(await page.evaluate('typeof axe !== "undefined"'))) await page.evaluate(AXE)
  const violations = (await page.evaluate(
    'axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations)',
  )) as AxeViolation[]
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  assert.deepEqual(
    bad.map(
      (v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`,
    ),
    [],
    `accessibility violations on ${what}`,
  )
}

/** A fresh page that records console errors and uncaught exceptions. */
async function newPage(): Promise<{ page: Page; consoleErrors: string[] }> {
  const page = await browser!.newPage({ viewport: { width: 1366, height: 900 } })
  const consoleErrors: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text())
  })
  page.on('pageerror', (e) => consoleErrors.push(e.message))
  page.setDefaultTimeout(30_000)
  return { page, consoleErrors }
}

async function api(method: string, path: string, body?: unknown): Promise<unknown> {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await r.text()
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`)
  return text ? JSON.parse(text) : undefined
}

test('a stream from a sample, a campaign from the designer, and its activation in monitoring and history', async () => {
  const topic = uniqueName('ui.purchases')
  const stream = uniqueName('purchases').replaceAll('.', '-')
  const campaign = uniqueName('thanks').replaceAll('.', '-')
  await createTopic(topic)
  await produce(
    topic,
    [1, 2, 3].map((n) => ({
      key: `c${n}`,
      value: JSON.stringify({
        customer_id: `c${n}`,
        order_id: `o${n}`,
        amount: n * 10.5,
        ts: new Date().toISOString(),
      }),
    })),
  )

  const { page, consoleErrors } = await newPage()

  // Sign in.
  await page.goto(`${url}/`)
  await accessible(page, 'the sign-in page')
  await shot(page, '01-signin')
  await page.getByLabel('API key').fill('rfl_not_a_key')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor()
  consoleErrors.length = 0 // the browser logs the rejected key's 401 itself
  await page.getByLabel('API key').fill(adminKey)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('heading', { name: 'Streams' }).waitFor()
  // Who signed in, as GET /api/v1/whoami says.
  assert.equal((await page.locator('.top .who').textContent())?.trim(), 'ui e2e · admin')
  await accessible(page, 'the streams page')

  // Define the stream from a live sample.
  await page.getByRole('button', { name: 'New stream' }).click()
  await page.getByLabel('Name', { exact: true }).fill(stream)
  await page.getByLabel('Kafka topic').fill(topic)
  await page.getByRole('button', { name: 'Load live sample' }).click()
  await page.getByRole('list', { name: 'Sampled messages' }).getByText('"o3"').waitFor()
  await page.getByRole('button', { name: 'Infer fields' }).click()
  await page.getByText(/Inferred \d+ fields/).waitFor()
  assert.equal(await page.getByLabel('Customer key field').inputValue(), 'customer_id')
  await accessible(page, 'the stream editor')
  await shot(page, '02-stream-editor')
  await page.getByRole('button', { name: 'Save stream' }).click()
  await page.getByRole('cell', { name: stream, exact: true }).waitFor()
  await shot(page, '03-streams')

  // Build the campaign in the designer; validation runs on the server as we type.
  await page.getByRole('link', { name: 'Campaigns' }).click()
  await page.getByRole('button', { name: 'New campaign' }).click()
  await page.getByLabel('Name', { exact: true }).fill(campaign)
  await page.getByLabel('Stream', { exact: true }).selectOption(stream)
  await page.getByLabel(/^Condition/).fill('event.amount >= ')
  await page.locator('#c-where[aria-invalid="true"]').waitFor()
  assert.match((await page.locator('#c-where-error').textContent()) ?? '', /^Line 1, column 17: /)
  await page.getByLabel(/^Condition/).fill('')
  await page
    .getByLabel('Insert a field into Condition (CEL), empty for every event')
    .selectOption('event.amount')
  await page.getByLabel(/^Condition/).press('End')
  await page.getByLabel(/^Condition/).pressSequentially(' >= 10.0')
  assert.equal(await page.getByLabel(/^Condition/).inputValue(), 'event.amount >= 10.0')
  await page.getByRole('button', { name: 'Add content field' }).click()
  await page.getByLabel('Content field').fill('offer_code')
  await page.getByLabel('Expression for offer_code', { exact: true }).fill('"THX-" + event.order_id')
  await page.getByRole('button', { name: 'Add Kafka output' }).click()
  await page.getByLabel('Topic', { exact: true }).fill(`${topic}.offers`)
  await page.getByText('The campaign is valid.').waitFor()
  await page.getByRole('button', { name: 'Save' }).click()
  await page.getByText('Saved version').waitFor()
  await page.getByRole('button', { name: 'Activate' }).click()
  await page.getByText('The campaign is active.').waitFor()
  await page
    .getByRole('button', { name: /^Diff with v/ })
    .first()
    .click()
  await page.locator('pre.diff .add').first().waitFor()
  await page.getByRole('button', { name: /^Use the newest event of/ }).click()
  await waitFor(
    'a sampled event',
    async () => (await page.getByLabel('Event (JSON)').inputValue()).includes('order_id'),
    30_000,
  )
  await page.getByRole('button', { name: 'Dry run', exact: true }).click()
  await page.locator('pre[title="Dry run result"]').getByText('THX-o3').first().waitFor()
  await accessible(page, 'the campaign designer')
  await shot(page, '04-campaign-designer')

  // Produce an event until the engine, which picks the campaign up live, acts on it.
  await page.getByRole('link', { name: 'Monitoring' }).click()
  await page.getByRole('heading', { name: 'Monitoring' }).waitFor()
  const table = page.getByRole('table', { name: 'Activations since start' })
  for (let n = 0; ; n++) {
    await produce(topic, [
      {
        key: 'c42',
        value: JSON.stringify({
          customer_id: 'c42',
          order_id: `o42-${n}`,
          amount: 99.5,
          ts: new Date().toISOString(),
        }),
      },
    ])
    const seen = await table
      .getByText(`${campaign} / `)
      .first()
      .waitFor({ timeout: 10_000 })
      .then(() => true)
      .catch(() => false)
    if (seen) break
    assert.ok(n < 9, 'the activation did not show in monitoring within 100 s')
  }
  await sleep(2500) // a few 1 s chart updates
  await page.getByLabel('Topic', { exact: true }).fill(topic)
  await page.getByLabel('Offset').fill('0')
  await page.getByRole('button', { name: 'Trace' }).click()
  await page.locator('pre[title="Trace result"]').getByText(campaign).first().waitFor()
  await accessible(page, 'the monitoring page')
  await shot(page, '05-monitoring')

  await page.getByRole('link', { name: 'History' }).click()
  await page.getByRole('cell', { name: 'c42', exact: true }).first().waitFor()
  assert.ok(await page.getByText('THX-o42-').first().isVisible())
  await accessible(page, 'the history page')
  await shot(page, '06-history')

  await page.getByRole('link', { name: 'Pull Marketing' }).click()
  await page.getByLabel('Customer key').fill('c42')
  await page.getByRole('button', { name: 'Look up' }).click()
  await page.getByRole('heading', { name: 'Recent activations for c42' }).waitFor()
  await accessible(page, 'the Pull Marketing page')
  await shot(page, '07-pull-lookup')

  assert.deepEqual(consoleErrors, [], `console errors: ${consoleErrors.join('\n')}`)
})

test('a scheduled campaign over a data store table, built in the designer, run from the UI with its progress', async (t) => {
  const collection = uniqueName('segments').replaceAll('.', '_').replaceAll('-', '_')
  const campaign = uniqueName('nightly').replaceAll('.', '-')
  await api('POST', '/api/v1/collections', {
    name: collection,
    key: 'customer_id',
    fields: [
      { name: 'segment', type: 'string' },
      { name: 'offer', type: 'string' },
    ],
  })
  // the data store settings name the default key column; the designer says which it is
  await api('PUT', '/api/v1/datastore', { key: 'account_id' })
  const { page, consoleErrors } = await newPage()
  // By keyboard: the key field takes focus first, Enter signs in.
  await page.goto(`${url}/`)
  // the app renders the sign-in form after its script loads: Tab before that focuses nothing
  await page.locator('#api-key').waitFor()
  await page.keyboard.press('Tab')
  assert.equal(await page.evaluate('document.activeElement.id'), 'api-key')
  await page.keyboard.type(adminKey)
  await page.keyboard.press('Enter')
  await page.getByRole('heading', { name: 'Streams' }).waitFor()

  await page.getByRole('link', { name: 'Campaigns' }).click()
  await page.getByRole('button', { name: 'New campaign' }).click()
  await page.getByLabel('Name', { exact: true }).fill(campaign)
  await page.getByLabel('Trigger kind').selectOption('schedule')
  await page.getByLabel('Cron schedule').fill('0 3 * * *')
  await page.getByLabel('Time zone').fill('Europe/London')

  // The audience comes from the data store's tables, and `row.<column>` from the table's columns.
  await page.getByLabel('Audience from').selectOption('table')
  await page
    .getByLabel('Table', { exact: true })
    .locator('option', { hasText: TABLE })
    .waitFor({ state: 'attached' })
  const tableOptions = await page.getByLabel('Table', { exact: true }).locator('option').allTextContents()
  assert.ok(
    tableOptions.some((o) => o.startsWith(`${TABLE} (3 columns)`)),
    `the table picker offers ${TABLE}: ${tableOptions.join(' | ')}`,
  )
  await page.getByLabel('Table', { exact: true }).selectOption(TABLE)
  assert.equal(
    await page.getByLabel('Customer key column').locator('option').first().textContent(),
    'default (account_id)',
  )
  await page.getByLabel('Customer key column').selectOption('customer_id')
  await page.getByText(`row.spend: number`).waitFor()
  const rowPicks = await page
    .getByLabel('Insert a field into Condition (CEL), empty for every row')
    .locator('option')
    .allTextContents()
  for (const f of ['row.customer_id', 'row.segment', 'row.spend'])
    assert.ok(rowPicks.includes(f), `the condition picker offers ${f}: ${rowPicks.join(' | ')}`)
  assert.ok(!rowPicks.some((p) => p.startsWith('event.')), 'no event fields for a scheduled campaign')
  await page.getByLabel('Insert a field into Condition (CEL), empty for every row').selectOption('row.spend')
  await page.getByLabel(/^Condition/).press('End')
  await page.getByLabel(/^Condition/).pressSequentially(' >= 0.0')
  assert.equal(await page.getByLabel(/^Condition/).inputValue(), 'row.spend >= 0.0')

  // The expression editor marks a CEL error where it is, accessibly; then a Liquid one.
  await page.getByRole('button', { name: 'Add content field' }).click()
  await page.getByLabel('Content field').fill('offer')
  const expr = page.getByLabel('Expression for offer', { exact: true })
  await expr.fill('"OFFER-" + row.segment +')
  await page.locator('#c-content-0-value[aria-invalid="true"]').waitFor()
  const describedBy = await expr.getAttribute('aria-describedby')
  assert.ok(describedBy, 'the invalid expression is described by its error')
  const errorText = await page.locator(`[id="${describedBy}"]`).textContent()
  assert.match(errorText ?? '', /^Line 1, column 25: /)
  const mark = page.locator('.expr-box').filter({ has: expr }).locator('.expr-marks mark')
  await mark.waitFor()
  assert.equal(await mark.getAttribute('data-start'), '24')
  await accessible(page, 'the designer with an expression error')
  await shot(page, '08-expression-error')
  await expr.fill('"OFFER-" + row.segment')
  await page.locator('#c-content-0-value:not([aria-invalid])').waitFor()
  assert.equal(await mark.count(), 0, 'the mark goes once the expression is valid')
  await page.getByLabel('Kind', { exact: true }).selectOption('liquid')
  const template = page.getByLabel('Template for offer', { exact: true })
  await template.fill('Hello {{ row.segment | nope }}')
  await page.locator('#c-content-0-value[aria-invalid="true"]').waitFor()
  assert.match(
    (await page.locator('#c-content-0-value-error').textContent()) ?? '',
    /Line 1, column 7: .*filter/,
  )
  assert.equal(
    await page.locator('.expr-box').filter({ has: template }).locator('.expr-marks mark').textContent(),
    '{{ row.segment | nope }}',
  )
  await page.getByLabel('Kind', { exact: true }).selectOption('cel')
  await expr.fill('"OFFER-" + row.segment')

  // Write each row's segment and offer into the Pull Marketing database.
  await page.getByRole('button', { name: 'Add Pull output' }).click()
  await page.getByLabel('Collection', { exact: true }).last().selectOption(collection)
  await page.getByLabel('Record key', { exact: true }).fill('row.customer_id')
  await page.getByLabel('Set segment (optional)', { exact: true }).fill('row.segment')
  await page.getByLabel('Set offer (optional)', { exact: true }).fill('content.offer')
  await page.getByText('The campaign is valid.').waitFor()
  await page.getByRole('button', { name: 'Save' }).click()
  await page.getByText(/^Saved version \d+\.$/).waitFor()

  // Run it now and watch the progress refresh while it goes.
  const runs = page.getByRole('table', { name: `Runs of ${campaign}` })
  await page.getByRole('button', { name: 'Run now' }).click()
  await page.getByText(/^Started run /).waitFor()
  const seen = new Set<string>()
  const started = Date.now()
  let running = 0
  for (;;) {
    const row = runs.locator('tbody tr').first()
    const status = (await row.locator('.status').textContent()) ?? ''
    const progress = (await row.locator('.run-rows').textContent()) ?? ''
    if (status === 'running') {
      running++
      seen.add(progress)
      if (running === 1) await shot(page, '09-scheduled-run-progress')
    }
    if (status !== 'running') {
      assert.equal(status, 'succeeded', `the run ended ${status}`)
      break
    }
    assert.ok(Date.now() - started < 120_000, 'the run did not end within 2 minutes')
    await sleep(150)
  }
  const took = Date.now() - started
  const done = await runs.locator('tbody tr').first().locator('.run-rows').textContent()
  assert.equal(done, `${ROWS.toLocaleString('en')} of ${ROWS.toLocaleString('en')} rows (100%)`)
  const bar = runs.locator('tbody tr').first().getByRole('progressbar')
  assert.equal(await bar.getAttribute('value'), String(ROWS))
  assert.equal(await bar.getAttribute('max'), String(ROWS))
  // While running, the progress was re-read (at least two values) and showed rows done below
  // rows selected, counted (a percentage under 100).
  const partial = [...seen].filter((p) => / of [\d,]+ rows \((\d|[1-9]\d)%\)$/.test(p))
  assert.ok(
    seen.size >= 2 && partial.length >= 1,
    `the progress refreshed while running (run seen for ${took} ms): ${[...seen].join(' | ')}`,
  )
  t.diagnostic(`a run of ${ROWS} rows, seen in the UI for ${took} ms: ${[...seen].join(' | ')}`)
  await accessible(page, 'the scheduled campaign designer')
  await shot(page, '10-scheduled-designer')

  // The run on the history and runs page, and in detail.
  await page.getByRole('link', { name: 'History', exact: true }).click()
  const all = page.getByRole('table', { name: 'Runs, newest first' })
  const link = all.getByRole('link', { name: new RegExp(`^${campaign}\\.manual\\.`) })
  await link.waitFor()
  await accessible(page, 'the history and runs page')
  await shot(page, '11-history-runs')
  await link.focus()
  await page.keyboard.press('Enter')
  await page.getByRole('heading', { name: /^Run / }).waitFor()
  await page.getByRole('row', { name: /pull/ }).waitFor()
  assert.match(
    (await page.getByRole('row', { name: /pull/ }).textContent()) ?? '',
    new RegExp(`ok ${ROWS.toLocaleString('en')}`),
  )
  assert.match((await page.getByRole('row', { name: /sent/ }).textContent()) ?? '', /sent/)
  await page.getByText('None.').waitFor() // no errors
  await accessible(page, 'the run page')
  await shot(page, '12-run-detail')

  // The Pull Marketing database holds what the run wrote.
  const rec = (await api('GET', `/api/v1/collections/${collection}/records/s7`)) as {
    fields: Record<string, unknown>
  }
  assert.deepEqual(rec.fields, { segment: 'silver', offer: 'OFFER-silver' })
  assert.deepEqual(consoleErrors, [], `console errors: ${consoleErrors.join('\n')}`)
})
