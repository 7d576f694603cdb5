/** Serves the web UI built by `vite build` into dist/ui, with its page paths answered by index.html. */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

/** dist/ui, from both src/api/routes (tsx) and dist/api/routes (built). */
export const UI_ROOT = fileURLToPath(new URL('../../../dist/ui/', import.meta.url))

/**
 * The UI's own paths. Listed, not a catch-all, so that an unknown `/api`, `/pull`, `/ingest` or
 * `/docs` path keeps its JSON 404.
 */
export const UI_PAGES = ['/signin', '/streams', '/lookup', '/campaigns', '/monitoring', '/history']

export async function uiRoutes(app: FastifyInstance, root = UI_ROOT): Promise<void> {
  if (!existsSync(`${root}index.html`)) {
    app.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply
        .type('text/plain; charset=utf-8')
        .send(
          'The web UI is not built; run `npm run build`. The API is at /api/v1 and its reference at /docs.',
        ),
    )
    return
  }
  await app.register(fastifyStatic, { root, prefix: '/', wildcard: false, index: 'index.html' })
  const page = async (_req: unknown, reply: { sendFile(f: string): unknown }) => reply.sendFile('index.html')
  for (const p of UI_PAGES) {
    app.get(p, { schema: { hide: true } }, page as never)
    app.get(`${p}/*`, { schema: { hide: true } }, page as never)
  }
}
