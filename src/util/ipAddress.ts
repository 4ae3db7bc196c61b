/**
 * IP addresses as bytes, and prefixes (CIDR) over them, for the checks that keep
 * the server's outgoing connections away from addresses it must not reach. Text
 * forms are parsed strictly (no octal or short IPv4 forms such as "127.1", which
 * resolvers would read differently from the way a reader does).
 */

/** An IPv4 (4 bytes) or IPv6 (16 bytes) address. */
export type IpBytes = Uint8Array;

/** An address prefix: the first `length` bits of `bytes`. */
export interface IpPrefix {
  bytes: IpBytes;
  length: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses a dotted-quad IPv4 address ("10.0.0.1"); undefined for anything else. */
export function parseIpv4(text: string): IpBytes | undefined {
  const match = IPV4.exec(text);
  if (!match) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = match[i + 1] as string;
    // A leading zero would be octal to some resolvers: refuse the ambiguity.
    if (part.length > 1 && part.startsWith('0')) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

/** Parses an IPv6 address ("::1", "fe80::1%eth0", "::ffff:10.0.0.1", with or without brackets). */
export function parseIpv6(text: string): IpBytes | undefined {
  let body = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const zone = body.indexOf('%');
  if (zone >= 0) body = body.slice(0, zone);
  if (body === '' || !/^[0-9a-fA-F:.]+$/.test(body)) return undefined;
  const groups: number[] = [];
  const parseGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const result: number[] = [];
    const pieces = part.split(':');
    for (const [index, piece] of pieces.entries()) {
      if (index === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIpv4(piece);
        if (!v4) return undefined;
        result.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
      result.push(Number.parseInt(piece, 16));
    }
    return result;
  };
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0] as string);
  const tail = halves.length === 2 ? parseGroups(halves[1] as string) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups.push(...head, ...new Array<number>(missing).fill(0), ...tail);
  } else {
    if (head.length !== 8) return undefined;
    groups.push(...head);
  }
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/** Parses an IPv4 or IPv6 address; undefined when `text` is not one (a host name, say). */
export function parseIp(text: string): IpBytes | undefined {
  return parseIpv4(text) ?? parseIpv6(text);
}

/** The IPv4 address an IPv4-mapped IPv6 address (::ffff:a.b.c.d) stands for; the address itself otherwise. */
export function unmapIpv4(address: IpBytes): IpBytes {
  if (address.length !== 16) return address;
  for (let i = 0; i < 10; i++) if (address[i] !== 0) return address;
  if (address[10] !== 0xff || address[11] !== 0xff) return address;
  return address.slice(12);
}

/** Text form: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run compressed). */
export function formatIp(address: IpBytes): string {
  if (address.length === 4) return Array.from(address).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((address[i] as number) << 8) | (address[i + 1] as number));
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i > 1) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** Parses "ADDRESS/LENGTH" or a single address (a full-length prefix); undefined when malformed. */
export function parseIpPrefix(text: string): IpPrefix | undefined {
  const slash = text.lastIndexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIp(addressText);
  if (!bytes) return undefined;
  if (slash < 0) return { bytes, length: bytes.length * 8 };
  const lengthText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lengthText)) return undefined;
  const length = Number(lengthText);
  if (length > bytes.length * 8) return undefined;
  return { bytes, length };
}

/** Whether `address` lies within `prefix` (same family; an IPv4-mapped IPv6 address counts as IPv4). */
export function prefixContains(prefix: IpPrefix, address: IpBytes): boolean {
  const candidate = prefix.bytes.length === 4 ? unmapIpv4(address) : address;
  if (candidate.length !== prefix.bytes.length) return false;
  let remaining = prefix.length;
  for (let i = 0; remaining > 0; i++, remaining -= 8) {
    const mask = remaining >= 8 ? 0xff : (0xff << (8 - remaining)) & 0xff;
    if (((candidate[i] as number) & mask) !== ((prefix.bytes[i] as number) & mask)) return false;
  }
  return true;
}
