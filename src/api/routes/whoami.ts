/** Who am I: the presented key's id, name and scopes (never its secret), for the web UI and scripts. */
import type { FastifyInstance } from 'fastify'
import Type from 'typebox'
import { hasScope, type KeyStore } from '../../auth/keys.js'
import { requireKey } from '../auth.js'

export const WhoAmISchema = Type.Object({
  keyId: Type.String({ description: 'The key id: the part between `rfl_` and the secret.' }),
  name: Type.Union([Type.String(), Type.Null()], { description: 'The name given when the key was made.' }),
  scopes: Type.Array(Type.String(), {
    description: 'admin, ingest, pull:read:<collection> or pull:read:*, as granted.',
  }),
  admin: Type.Boolean({ description: 'Whether the key may use the admin API (holds `admin`).' }),
})

export function whoamiRoutes(app: FastifyInstance, keys: KeyStore): void {
  app.get(
    '/api/v1/whoami',
    {
      onRequest: requireKey(keys),
      schema: {
        tags: ['auth'],
        summary: 'The presented API key: id, name and scopes (never the secret); any valid key',
        response: { 200: WhoAmISchema },
      },
    },
    async (req) => {
      const p = req.principal!
      return {
        keyId: p.keyId,
        name: p.name ?? null,
        scopes: [...p.scopes].sort(),
        admin: hasScope(p, 'admin'),
      }
    },
  )
}
