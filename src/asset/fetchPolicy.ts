/**
 * Where the remote downloader may connect. By default only to globally reachable
 * addresses (see addressClass.ts); an operator opens more with allow patterns
 * (`granary serve --fetch-allow PATTERN`, repeatable):
 *
 * - `HOST`: exactly that host name (case-insensitive), whatever addresses it resolves to;
 * - `*.DOMAIN`: every name below DOMAIN (not DOMAIN itself), whatever they resolve to;
 * - `ADDRESS` or `ADDRESS/LENGTH` (IPv4 or IPv6, brackets optional): those addresses,
 *   whatever name led to them (a URL naming the address, a host name resolving to it,
 *   a redirect).
 *
 * Ports play no part. A host name is judged by every address it resolves to: one
 * refused address refuses the name (a resolver answering with a public and a private
 * address does not get the private one through).
 */
import { formatIp, type IpBytes, type IpPrefix, parseIp, parseIpPrefix, prefixContains } from '../util/ipAddress.js';
import { type AddressClass, classifyAddress, isMetadataHostName } from './addressClass.js';

/** Why the policy refused a connection, for the FetchBlob response's status message. */
export class OriginRefused extends Error {
  constructor(
    readonly addressClass: AddressClass,
    message: string,
  ) {
    super(message);
  }
}

const HOST_NAME = /^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/;

/** Lowercase, without brackets or a trailing dot: how host names and patterns are compared. */
export function normalizeHost(host: string): string {
  let normalized = host.toLowerCase();
  if (normalized.startsWith('[') && normalized.endsWith(']')) normalized = normalized.slice(1, -1);
  return normalized.endsWith('.') ? normalized.slice(0, -1) : normalized;
}

export class FetchPolicy {
  private readonly hosts = new Set<string>();
  private readonly domains: string[] = [];
  private readonly prefixes: IpPrefix[] = [];

  /** Throws an Error naming the pattern when one is malformed. */
  constructor(allowPatterns: readonly string[] = []) {
    for (const pattern of allowPatterns) {
      const text = pattern.trim();
      const prefix = parseIpPrefix(text.startsWith('[') ? text.replace(/^\[(.*)\](\/\d+)?$/, '$1$2') : text);
      if (prefix) {
        this.prefixes.push(prefix);
        continue;
      }
      const host = normalizeHost(text);
      if (host.startsWith('*.') && HOST_NAME.test(host.slice(2))) this.domains.push(host.slice(1));
      else if (HOST_NAME.test(host)) this.hosts.add(host);
      else {
        throw new Error(
          `"${pattern}" is not a host name, *.domain, IP address or ADDRESS/LENGTH prefix (e.g. artifacts.internal, *.corp.example, 10.0.0.0/8)`,
        );
      }
    }
  }

  /** Whether the operator opened this host name (it is then not checked by address). */
  allowsName(host: string): boolean {
    const name = normalizeHost(host);
    return this.hosts.has(name) || this.domains.some((domain) => name.endsWith(domain));
  }

  /**
   * Checks a URL's host before any lookup: throws OriginRefused for a refused IP
   * literal or a cloud metadata name. Returns true when the host needs no address
   * check (an opened name, or an address already judged here).
   */
  checkHost(host: string): boolean {
    const name = normalizeHost(host);
    if (this.allowsName(name)) return true;
    const literal = parseIp(name);
    if (literal) {
      this.checkAddress(name, literal);
      return true;
    }
    if (isMetadataHostName(name)) {
      throw new OriginRefused('cloud metadata', `${name} is a cloud metadata service, refused by default${HINT}`);
    }
    return false;
  }

  /** Throws OriginRefused when `address`, which `host` led to, is of a refused class and not opened. */
  checkAddress(host: string, address: IpBytes): void {
    const addressClass = classifyAddress(address);
    if (addressClass === undefined) return;
    if (this.prefixes.some((prefix) => prefixContains(prefix, address))) return;
    const shown = formatIp(address);
    const via = normalizeHost(host) === shown ? shown : `${normalizeHost(host)} resolves to ${shown}, which`;
    const article = addressClass === 'unspecified' ? 'an' : 'a';
    throw new OriginRefused(addressClass, `${via} is ${article} ${addressClass} address, refused by default${HINT}`);
  }
}

const HINT = ' (an operator can open it with granary serve --fetch-allow)';
