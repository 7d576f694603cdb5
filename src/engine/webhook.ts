/** Webhook delivery with undici: timeouts, bounded retries with backoff, an Idempotency-Key, no redirects. */
import { Agent, request } from 'undici'
import { TargetPolicy } from './ssrf.js'

export interface WebhookRequest {
  url: string
  body: string
  idempotencyKey: string
  timeoutMs: number
  retries: number
  headers: Record<string, string>
}

export type WebhookResult =
  | { ok: true; status: number; attempts: number }
  | { ok: false; retryable: boolean; detail: string; attempts: number }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export class WebhookSender {
  readonly #agent: Agent
  readonly policy: TargetPolicy

  constructor(
    policy = new TargetPolicy(),
    private readonly backoffMs = 100,
  ) {
    this.policy = policy
    this.#agent = new Agent({ connect: { lookup: policy.lookup }, keepAliveTimeout: 10_000, connections: 64 })
  }

  async send(req: WebhookRequest): Promise<WebhookResult> {
    let url: URL
    try {
      url = new URL(req.url)
    } catch {
      return { ok: false, retryable: false, detail: 'invalid URL', attempts: 0 }
    }
    const blocked = this.policy.urlProblem(url)
    if (blocked) return { ok: false, retryable: false, detail: blocked, attempts: 0 }
    let last: WebhookResult = { ok: false, retryable: true, detail: 'not attempted', attempts: 0 }
    for (let attempt = 1; attempt <= req.retries + 1; attempt++) {
      last = await this.#attempt(url, req, attempt)
      if (last.ok || !last.retryable) return last
      if (attempt <= req.retries) await sleep(this.backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random()))
    }
    return last
  }

  async #attempt(url: URL, req: WebhookRequest, attempt: number): Promise<WebhookResult> {
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.#agent,
        headers: {
          ...req.headers,
          'content-type': 'application/json',
          'idempotency-key': req.idempotencyKey,
          'user-agent': 'riffle',
        },
        body: req.body,
        headersTimeout: req.timeoutMs,
        bodyTimeout: req.timeoutMs,
        signal: AbortSignal.timeout(req.timeoutMs),
      })
      await res.body.dump().catch(() => {})
      const s = res.statusCode
      if (s >= 200 && s < 300) return { ok: true, status: s, attempts: attempt }
      if (s >= 300 && s < 400)
        return {
          ok: false,
          retryable: false,
          detail: `HTTP ${s}: redirects are not followed`,
          attempts: attempt,
        }
      const retryable = s === 408 || s === 429 || s >= 500
      return { ok: false, retryable, detail: `HTTP ${s}`, attempts: attempt }
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException }
      const code = err.code ?? err.cause?.code
      if (code === 'RIFFLE_SSRF_BLOCKED' || err.cause?.code === 'RIFFLE_SSRF_BLOCKED') {
        return { ok: false, retryable: false, detail: (err.cause ?? err).message, attempts: attempt }
      }
      const detail =
        err.name === 'TimeoutError' || err.name === 'AbortError'
          ? `timed out after ${req.timeoutMs} ms`
          : `${code ?? err.name}: ${err.message}`
      return { ok: false, retryable: true, detail, attempts: attempt }
    }
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => {})
  }
}
