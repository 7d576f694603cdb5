import type { FastifyReply, FastifyRequest } from 'fastify'
import { hasScope, type KeyStore, type Principal } from '../auth/keys.js'
import { riffleError } from '../errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
  }
}

/** A preHandler that requires a valid key, whatever its scopes. */
export function requireKey(keys: KeyStore) {
  return requireScope(keys, undefined)
}

/** A preHandler that requires a key holding `scope` (or a scope computed from the request). */
export function requireScope(keys: KeyStore, scope: string | ((req: FastifyRequest) => string) | undefined) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = req.headers.authorization
    if (!header) {
      reply.header('www-authenticate', 'Bearer')
      throw riffleError('RIFFLE_UNAUTHORIZED', 'missing API key: send "Authorization: Bearer <key>"')
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
    const principal = m ? await keys.verify(m[1]!) : undefined
    if (!principal) {
      reply.header('www-authenticate', 'Bearer error="invalid_token"')
      throw riffleError('RIFFLE_UNAUTHORIZED', 'the API key is not valid or has been revoked')
    }
    const needed = typeof scope === 'function' ? scope(req) : scope
    if (needed !== undefined && !hasScope(principal, needed)) {
      throw riffleError('RIFFLE_FORBIDDEN', `the API key lacks the scope "${needed}"`)
    }
    req.principal = principal
  }
}

/** Who made a change, for the definitions' version history. */
export function actorOf(req: FastifyRequest): string {
  return req.principal ? `key:${req.principal.keyId}` : 'anonymous'
}
