import { BlockList, isIP, type LookupFunction } from 'node:net';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';

/** Thrown when a request breaks the network policy; the sandbox turns it into a `capability` error. */
export class EgressDeniedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EgressDeniedError';
  }
}

// Every IPv4 range that is not the public internet: private, loopback, link-local (cloud metadata
// lives at 169.254.169.254), CGNAT, documentation, benchmarking, multicast, reserved, broadcast.
const V4_NOT_PUBLIC: Array<[string, number]> = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16],
  ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
];
// IPv6 is public only inside global unicast 2000::/3, minus ranges that tunnel to IPv4 (6to4,
// Teredo and friends could reach a private IPv4 address) or are for documentation.
const V6_NOT_PUBLIC_IN_GLOBAL: Array<[string, number]> = [['2001::', 23], ['2001:db8::', 32], ['2002::', 16]];

const notPublic = new BlockList();
for (const [net, prefix] of V4_NOT_PUBLIC) notPublic.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of V6_NOT_PUBLIC_IN_GLOBAL) notPublic.addSubnet(net, prefix, 'ipv6');
const globalUnicast = new BlockList();
globalUnicast.addSubnet('2000::', 3, 'ipv6');

/**
 * True if `address` (an IP literal) is on the public internet. Anything unparsable, private,
 * loopback, link-local, multicast, reserved or IPv4-mapped counts as not public: deny by default.
 */
export function isPublicAddress(address: string): boolean {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const version = isIP(bare);
  if (version === 4) return !notPublic.check(bare, 'ipv4');
  if (version === 6) {
    if (bare.includes('%')) return false; // zone ids only make sense on link-local addresses
    return globalUnicast.check(bare, 'ipv6') && !notPublic.check(bare, 'ipv6');
  }
  return false;
}

/**
 * A `lookup` for net/tls connect that resolves the name, refuses the whole answer if any address
 * is not public (unless `allowPrivate`), and hands the socket exactly the addresses it checked.
 * Checking inside the lookup pins the connection: there is no second resolution an attacker's
 * DNS server could answer differently (DNS rebinding).
 */
export function pinnedLookup(allowPrivate: boolean, grantHint: string): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const family = typeof options.family === 'number' ? options.family : 0;
      const usable = addresses.filter((a) => family === 0 || a.family === family);
      const bad = allowPrivate ? undefined : usable.find((a) => !isPublicAddress(a.address));
      if (bad) {
        return callback(new EgressDeniedError(
          `${hostname} resolves to ${bad.address}, a private, loopback or link-local address; ` +
          `only a grant that names the exact host and port (e.g. "${grantHint}") may reach it`,
        ), '', 0);
      }
      const first = usable[0];
      if (!first) return callback(Object.assign(new Error(`no address found for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      if (options.all) callback(null, usable);
      else callback(null, first.address, first.family);
    });
  };
}

/** Finds an EgressDeniedError anywhere in an error's cause chain (undici wraps socket errors). */
export function findDenial(err: unknown): EgressDeniedError | undefined {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof EgressDeniedError) return e;
  }
  return undefined;
}
