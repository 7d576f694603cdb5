import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TargetPolicy } from '../../src/engine/ssrf.js'
import { WebhookSender } from '../../src/engine/webhook.js'
import { webhookReceiver } from './harness.js'

describe('webhook SSRF guard', () => {
  it('refuses non-http schemes and private, loopback, link-local and metadata addresses', () => {
    const p = new TargetPolicy()
    for (const url of [
      'http://127.0.0.1/x',
      'http://localhost:8080/x',
      'http://10.1.2.3/x',
      'http://172.20.0.1/x',
      'http://192.168.1.1/x',
      'http://169.254.169.254/latest/meta-data',
      'http://100.64.0.1/x',
      'http://[::1]/x',
      'http://[fd00::1]/x',
      'http://[::ffff:127.0.0.1]/x',
      'http://0.0.0.0/x',
    ]) {
      assert.match(p.urlProblem(new URL(url)) ?? '', /private, loopback or link-local/, url)
    }
    assert.match(p.urlProblem(new URL('ftp://example.com/x')) ?? '', /scheme "ftp:" is not allowed/)
    assert.match(p.urlProblem(new URL('file:///etc/passwd')) ?? '', /scheme "file:" is not allowed/)
    assert.equal(p.urlProblem(new URL('https://93.184.216.34/x')), undefined)
  })

  it('allows what the allow-list names: addresses, ranges and host names', () => {
    const p = new TargetPolicy(['127.0.0.1', '10.1.0.0/16', 'crm.internal'])
    assert.equal(p.urlProblem(new URL('http://127.0.0.1:9000/x')), undefined)
    assert.equal(p.urlProblem(new URL('http://10.1.200.3/x')), undefined)
    assert.match(p.urlProblem(new URL('http://10.2.0.1/x')) ?? '', /private/)
    assert.equal(p.addressProblem('10.9.9.9', 'crm.internal'), undefined)
  })

  it('checks the resolved address, so a name that points inside is refused', async () => {
    const hook = await webhookReceiver()
    try {
      const blocked = new WebhookSender(new TargetPolicy(), 1)
      // localhost.localdomain style names resolve to loopback without being literal addresses.
      const r = await blocked.send({
        url: hook.url.replace('127.0.0.1', 'localhost'),
        body: '{}',
        idempotencyKey: 'k',
        timeoutMs: 1000,
        retries: 0,
        headers: {},
      })
      assert.equal(r.ok, false)
      assert.equal(hook.received.length, 0, 'nothing reached the private address')
      const allowed = new WebhookSender(new TargetPolicy(['127.0.0.1']), 1)
      const ok = await allowed.send({
        url: hook.url,
        body: '{"a":1}',
        idempotencyKey: 'act-1',
        timeoutMs: 1000,
        retries: 0,
        headers: { 'x-extra': 'y' },
      })
      assert.equal(ok.ok, true)
      assert.equal(hook.received[0]!.headers['idempotency-key'], 'act-1')
      assert.equal(hook.received[0]!.headers['x-extra'], 'y')
      await blocked.close()
      await allowed.close()
    } finally {
      await hook.close()
    }
  })

  it('does not follow redirects, and retries only what a retry can fix', async () => {
    let calls = 0
    const hook = await webhookReceiver(() => (++calls === 1 ? 503 : 302))
    try {
      const s = new WebhookSender(new TargetPolicy(['127.0.0.1']), 1)
      const r = await s.send({
        url: hook.url,
        body: '{}',
        idempotencyKey: 'k',
        timeoutMs: 1000,
        retries: 3,
        headers: {},
      })
      assert.equal(r.ok, false)
      assert.equal(r.ok === false && r.retryable, false)
      assert.match(r.ok === false ? r.detail : '', /redirects are not followed/)
      assert.equal(calls, 2, 'one retry after the 503, none after the 302')
      await s.close()
    } finally {
      await hook.close()
    }
  })
})
