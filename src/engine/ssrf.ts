/**
 * The SSRF guard for webhook targets: only http and https; loopback, private, link-local,
 * carrier-grade NAT and cloud metadata addresses are refused unless the allow-list names them.
 * The check runs on the resolved address at connect time, so DNS tricks cannot get around it.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { BlockList, isIP } from 'node:net'

const PRIVATE = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4')
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6')
}

/** Allowed private targets: host names, addresses, and CIDR ranges (e.g. `127.0.0.1`, `10.1.0.0/16`, `crm.internal`). */
export class TargetPolicy {
  readonly #hosts = new Set<string>()
  readonly #nets = new BlockList()

  constructor(allow: string[] = []) {
    for (const raw of allow.map((s) => s.trim()).filter(Boolean)) {
      const [addr, bits] = raw.split('/')
      const family = isIP(addr ?? '')
      if (family) {
        const type = family === 6 ? 'ipv6' : 'ipv4'
        if (bits !== undefined) this.#nets.addSubnet(addr!, Number(bits), type)
        else this.#nets.addAddress(addr!, type)
      } else this.#hosts.add(raw.toLowerCase())
    }
  }

  /** Why an address may not be contacted, or undefined when it may. */
  addressProblem(address: string, host: string): string | undefined {
    const family = isIP(address)
    if (!family) return `"${address}" is not an IP address`
    const type = family === 6 ? 'ipv6' : 'ipv4'
    let v4 = address
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
    if (mapped) v4 = mapped[1]!
    const checkType = mapped ? 'ipv4' : type
    if (!PRIVATE.check(v4, checkType)) return undefined
    if (this.#hosts.has(host.toLowerCase()) || this.#nets.check(v4, checkType)) return undefined
    return `${host} resolves to ${address}, a private, loopback or link-local address; add it to RIFFLE_WEBHOOK_ALLOW to allow it`
  }

  /** Checks a URL before any connection: scheme, and the host when it is an address. */
  urlProblem(url: URL): string | undefined {
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return `scheme "${url.protocol}" is not allowed; use http or https`
    const host = url.hostname.replace(/^\[|\]$/g, '')
    if (isIP(host)) return this.addressProblem(host, host)
    if (host === 'localhost' || host.endsWith('.localhost')) return this.addressProblem('127.0.0.1', host)
    return undefined
  }

  /** A `lookup` for net.connect that refuses private addresses after resolution. */
  readonly lookup = (
    hostname: string,
    options: object,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 4)
      const list = addresses as LookupAddress[]
      for (const a of list) {
        const problem = this.addressProblem(a.address, hostname)
        if (problem) {
          const e = new Error(problem) as NodeJS.ErrnoException
          e.code = 'RIFFLE_SSRF_BLOCKED'
          return callback(e, '', 4)
        }
      }
      if ((options as { all?: boolean }).all) return callback(null, list)
      callback(null, list[0]!.address, list[0]!.family)
    })
  }
}
