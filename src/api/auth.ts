import type { FastifyReply, FastifyRequest } from 'fastify'
import { hasScope, type KeyStore, type Principal } from '../auth/keys.js'
import { riffleError } from '../errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i

function unauthorized(reply: FastifyReply, header: string | undefined): Error {
  if (!header) {
    reply.header('www-authenticate', 'Bearer')
    return riffleError('RIFFLE_UNAUTHORIZED', 'missing API key: send "Authorization: Bearer <key>"')
  }
  reply.header('www-authenticate', 'Bearer error="invalid_token"')
  return riffleError('RIFFLE_UNAUTHORIZED', 'the API key is not valid or has been revoked')
}

/**
 * The check of requireScope, synchronous when the key's verdict is cached (the Pull API's hot
 * path): it returns a promise only when it has to wait for the key store, and throws (or rejects)
 * with RIFFLE_UNAUTHORIZED or RIFFLE_FORBIDDEN.
 */
export function scopeCheck(
  keys: KeyStore,
  scope: string | ((req: FastifyRequest) => string) | undefined,
): (req: FastifyRequest, reply: FastifyReply) => Promise<void> | undefined {
  const grant = (req: FastifyRequest, reply: FastifyReply, principal: Principal | undefined): void => {
    if (!principal) throw unauthorized(reply, req.headers.authorization)
    const needed = typeof scope === 'function' ? scope(req) : scope
    if (needed !== undefined && !hasScope(principal, needed)) {
      throw riffleError('RIFFLE_FORBIDDEN', `the API key lacks the scope "${needed}"`)
    }
    req.principal = principal
  }
  return (req, reply) => {
    const header = req.headers.authorization
    const m = header ? BEARER.exec(header) : null
    if (!m) {
      grant(req, reply, undefined)
      return undefined
    }
    const token = m[1]!
    const cached = keys.cached(token)
    if (cached) {
      grant(req, reply, cached.principal)
      return undefined
    }
    return keys.verify(token).then((principal) => grant(req, reply, principal))
  }
}

/** An onRequest hook (checked before the body is read) that requires a valid key, whatever its scopes. */
export function requireKey(keys: KeyStore) {
  return requireScope(keys, undefined)
}

/** An onRequest hook that requires a key holding `scope` (or a scope computed from the request). */
export function requireScope(keys: KeyStore, scope: string | ((req: FastifyRequest) => string) | undefined) {
  const check = scopeCheck(keys, scope)
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    await check(req, reply)
  }
}

/** Who made a change, for the definitions' version history. */
export function actorOf(req: FastifyRequest): string {
  return req.principal ? `key:${req.principal.keyId}` : 'anonymous'
}
