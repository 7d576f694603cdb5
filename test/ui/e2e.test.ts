/**
 * The web UI, end to end: a real `riffle start` with real Kafka, driven through Debian's chromium.
 * Define a stream from a live sample, build a campaign in the designer, activate it, produce an
 * event, and see the activation in monitoring and history. Screenshots go to test-results/ui/.
 */
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Browser, chromium, type Page } from 'playwright-core'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/log.js'
import { openRiffle } from '../../src/runtime.js'
import { createTopic, produce, waitFor } from '../engine/harness.js'
import { type RiffleProcess, spawnRiffle } from '../engine/process.js'
import { kafkaBrokers, tempDir, uniqueName } from '../helpers.js'

const SHOTS = join(process.cwd(), 'test-results', 'ui')
const CHROMIUM = process.env.RIFFLE_CHROMIUM ?? '/usr/bin/chromium'

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
  const riffle = await openRiffle(loadConfig(env), createLogger('silent'))
  adminKey = (await riffle.keys.create(['admin'], 'ui e2e')).key
  await riffle.close()
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

  const page = await browser!.newPage({ viewport: { width: 1366, height: 900 } })
  const consoleErrors: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text())
  })
  page.on('pageerror', (e) => consoleErrors.push(e.message))
  page.setDefaultTimeout(30_000)

  // Sign in.
  await page.goto(`${url}/`)
  await shot(page, '01-signin')
  await page.getByLabel('API key').fill('rfl_not_a_key')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor()
  consoleErrors.length = 0 // the browser logs the rejected key's 401 itself
  await page.getByLabel('API key').fill(adminKey)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('heading', { name: 'Streams' }).waitFor()

  // Define the stream from a live sample.
  await page.getByRole('button', { name: 'New stream' }).click()
  await page.getByLabel('Name', { exact: true }).fill(stream)
  await page.getByLabel('Kafka topic').fill(topic)
  await page.getByRole('button', { name: 'Load live sample' }).click()
  await page.getByRole('list', { name: 'Sampled messages' }).getByText('"o3"').waitFor()
  await page.getByRole('button', { name: 'Infer fields' }).click()
  await page.getByText(/Inferred \d+ fields/).waitFor()
  assert.equal(await page.getByLabel('Customer key field').inputValue(), 'customer_id')
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
  await page.locator('.step').filter({ hasText: '3. Audience' }).locator('.issues').waitFor()
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
  await shot(page, '05-monitoring')

  await page.getByRole('link', { name: 'History' }).click()
  await page.getByRole('cell', { name: 'c42', exact: true }).first().waitFor()
  assert.ok(await page.getByText('THX-o42-').first().isVisible())
  await shot(page, '06-history')

  await page.getByRole('link', { name: 'Pull Marketing' }).click()
  await page.getByLabel('Customer key').fill('c42')
  await page.getByRole('button', { name: 'Look up' }).click()
  await page.getByRole('heading', { name: 'Recent activations for c42' }).waitFor()
  await shot(page, '07-pull-lookup')

  assert.deepEqual(consoleErrors, [], `console errors: ${consoleErrors.join('\n')}`)
})
