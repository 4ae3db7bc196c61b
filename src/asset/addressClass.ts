/**
 * Which addresses the remote downloader must not connect to unless an operator
 * opened them: everything that is not a globally reachable unicast address
 * (loopback, link-local, RFC 1918 private, unique-local, shared/CGNAT,
 * unspecified, multicast, broadcast, documentation and other reserved ranges),
 * with the cloud metadata endpoints named as such. IPv6 forms that carry an IPv4
 * address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) are judged by the
 * IPv4 address they lead to, so "::ffff:127.0.0.1" is loopback too.
 */
import { type IpBytes, type IpPrefix, parseIpPrefix, prefixContains } from '../util/ipAddress.js';

/** Why an address is refused, as the refusal message names it. */
export type AddressClass =
  | 'loopback'
  | 'link-local'
  | 'private'
  | 'unique-local'
  | 'shared (CGNAT)'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'cloud metadata';

interface Range {
  prefix: IpPrefix;
  kind: AddressClass;
}

function ranges(table: Array<[string, AddressClass]>): Range[] {
  return table.map(([text, kind]) => {
    const prefix = parseIpPrefix(text);
    if (!prefix) throw new Error(`bad built-in prefix ${text}`);
    return { prefix, kind };
  });
}

/** Checked in order: the first match names the class (metadata before the ranges that hold it). */
const IPV4_RANGES = ranges([
  ['169.254.169.254/32', 'cloud metadata'], // AWS, GCP, Azure, OpenStack, DigitalOcean, ...
  ['169.254.170.2/32', 'cloud metadata'], // AWS ECS task metadata
  ['169.254.170.23/32', 'cloud metadata'], // AWS EKS pod identity
  ['100.100.100.200/32', 'cloud metadata'], // Alibaba Cloud
  ['192.0.0.192/32', 'cloud metadata'], // Oracle Cloud (legacy)
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared (CGNAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'], // IETF protocol assignments
  ['192.0.2.0/24', 'reserved'], // documentation
  ['192.88.99.0/24', 'reserved'], // 6to4 relay anycast
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'reserved'], // benchmarking
  ['198.51.100.0/24', 'reserved'], // documentation
  ['203.0.113.0/24', 'reserved'], // documentation
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
]);

const IPV6_RANGES = ranges([
  ['fd00:ec2::254/128', 'cloud metadata'], // AWS (IPv6 instance metadata)
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['100::/64', 'reserved'], // discard-only
  ['2001:db8::/32', 'reserved'], // documentation
  ['3fff::/20', 'reserved'], // documentation
  ['fc00::/7', 'unique-local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'private'], // deprecated site-local
  ['ff00::/8', 'multicast'],
]);

/** IPv6 prefixes that embed an IPv4 address, and where it sits (byte offset; Teredo's is inverted). */
const EMBEDDING: Array<{ prefix: IpPrefix; offset: number; inverted?: boolean }> = [
  { prefix: parseIpPrefix('::ffff:0:0/96') as IpPrefix, offset: 12 }, // IPv4-mapped
  { prefix: parseIpPrefix('::ffff:0:0:0/96') as IpPrefix, offset: 12 }, // IPv4-translated
  { prefix: parseIpPrefix('::/96') as IpPrefix, offset: 12 }, // IPv4-compatible (deprecated)
  { prefix: parseIpPrefix('64:ff9b::/96') as IpPrefix, offset: 12 }, // NAT64
  { prefix: parseIpPrefix('64:ff9b:1::/48') as IpPrefix, offset: 12 }, // local-use NAT64
  { prefix: parseIpPrefix('2002::/16') as IpPrefix, offset: 2 }, // 6to4
  { prefix: parseIpPrefix('2001::/32') as IpPrefix, offset: 12, inverted: true }, // Teredo client
];

/**
 * The class of a special-purpose address the downloader refuses, or undefined for
 * a globally reachable unicast address.
 */
export function classifyAddress(address: IpBytes): AddressClass | undefined {
  if (address.length === 4) return IPV4_RANGES.find((r) => prefixContains(r.prefix, address))?.kind;
  const own = IPV6_RANGES.find((r) => prefixContains(r.prefix, address))?.kind;
  if (own) return own;
  for (const { prefix, offset, inverted } of EMBEDDING) {
    if (!prefixContains(prefix, address)) continue;
    const embedded = address.slice(offset, offset + 4);
    if (inverted) for (let i = 0; i < 4; i++) embedded[i] = ~(embedded[i] as number) & 0xff;
    return classifyAddress(embedded);
  }
  return undefined;
}

/** Host names of cloud metadata services, refused before any DNS lookup. */
const METADATA_HOST_NAMES = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'metadata.azure.internal',
  'instance-data',
  'instance-data.ec2.internal',
]);

/** Whether a host name (lowercase, without a trailing dot) names a cloud metadata service. */
export function isMetadataHostName(host: string): boolean {
  return METADATA_HOST_NAMES.has(host);
}
