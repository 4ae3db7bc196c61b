/**
 * An HTTP(S) GET that cannot be aimed at addresses the FetchPolicy refuses. Each
 * hop (the first URL and every redirect) is checked: an IP literal before
 * connecting, a host name through the connection's own DNS lookup, which checks
 * every address the name resolves to and hands the socket exactly those, so a
 * name that resolves differently a moment later (DNS rebinding) cannot slip a
 * refused address past the check. Redirects are followed by hand, up to a limit,
 * only to http and https, and credentials are not sent on to another origin.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { parseIp } from '../util/ipAddress.js';
import type { FetchPolicy } from './fetchPolicy.js';

/** A DNS resolution: every address of a name. */
export type Resolver = (host: string) => Promise<Array<{ address: string; family: number }>>;

export interface GuardedGetOptions {
  headers: Record<string, string>;
  signal: AbortSignal;
  policy: FetchPolicy;
  /** Redirects followed at most; one more is an error. */
  maximumRedirects: number;
  /** Substitutable for tests; the system resolver by default. */
  resolve?: Resolver;
}

export interface GuardedResponse {
  /** The URL that answered (after redirects). */
  url: string;
  statusCode: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

/** A redirect that is not followed: too many, without a usable Location, or to another scheme. */
export class RedirectError extends Error {
  constructor(
    message: string,
    /** True when the limit was reached (the others are refusals). */
    readonly tooMany = false,
  ) {
    super(message);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Headers that carry credentials for one origin and are dropped on a redirect to another. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

const systemResolver: Resolver = (host) => dnsLookup(host, { all: true, verbatim: true });

/** GETs `url`, following redirects within the policy; the caller consumes or destroys the body. */
export async function guardedGet(url: string, options: GuardedGetOptions): Promise<GuardedResponse> {
  let current = new URL(url);
  let headers = { ...options.headers };
  for (let redirects = 0; ; redirects++) {
    if (current.protocol !== 'http:' && current.protocol !== 'https:') {
      throw new RedirectError(
        `redirected to ${current.protocol} URL ${current.href}, only http and https are followed`,
      );
    }
    const response = await requestOnce(current, headers, options);
    const location = response.headers.location;
    if (!REDIRECTS.has(response.statusCode ?? 0) || location === undefined) {
      return {
        url: current.href,
        statusCode: response.statusCode ?? 0,
        statusMessage: response.statusMessage ?? '',
        headers: response.headers,
        body: response,
      };
    }
    response.destroy();
    if (redirects >= options.maximumRedirects) {
      throw new RedirectError(`more than ${options.maximumRedirects} redirects (the limit; last to ${location})`, true);
    }
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new RedirectError(`redirected to an invalid location "${location}"`);
    }
    if (next.origin !== current.origin) {
      headers = Object.fromEntries(
        Object.entries(headers).filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase())),
      );
    }
    current = next;
  }
}

function requestOnce(url: URL, headers: Record<string, string>, options: GuardedGetOptions): Promise<IncomingMessage> {
  // Throws OriginRefused for a refused IP literal (which never goes through a lookup).
  const checked = options.policy.checkHost(url.hostname);
  const lookup = checked ? undefined : guardedLookup(url.hostname, options);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(url, { method: 'GET', headers, signal: options.signal, agent: false, lookup });
    request.once('response', resolve);
    request.once('error', reject);
    request.end();
  });
}

/** A socket lookup that resolves `host`, refuses the lot if any address is refused, and connects to what it checked. */
function guardedLookup(host: string, options: GuardedGetOptions): LookupFunction {
  const resolve = options.resolve ?? systemResolver;
  return (hostname, lookupOptions, callback) => {
    resolve(hostname).then(
      (addresses) => {
        try {
          for (const { address } of addresses) {
            const bytes = parseIp(address);
            if (!bytes) throw new Error(`the resolver returned "${address}", not an address`);
            options.policy.checkAddress(host, bytes);
          }
        } catch (error) {
          callback(error as NodeJS.ErrnoException, '', 0);
          return;
        }
        const wanted = lookupOptions.family === 4 || lookupOptions.family === 6 ? lookupOptions.family : 0;
        const usable = addresses.filter((a) => wanted === 0 || a.family === wanted);
        if (usable.length === 0) {
          const error: NodeJS.ErrnoException = new Error(`${hostname} has no usable address`);
          error.code = 'ENOTFOUND';
          callback(error, '', 0);
          return;
        }
        if ((lookupOptions as { all?: boolean }).all) {
          (callback as unknown as (error: null, addresses: Array<{ address: string; family: number }>) => void)(
            null,
            usable,
          );
        } else {
          const first = usable[0] as { address: string; family: number };
          callback(null, first.address, first.family);
        }
      },
      (error: NodeJS.ErrnoException) => callback(error, '', 0),
    );
  };
}
