/**
 * Who a quota belongs to. Quotas are kept per caller: the authenticated
 * principal (a token's, JWT's or certificate's name), or, for anonymous
 * callers, the network address they call from, so that one anonymous machine
 * that floods the farm exhausts only its own share, not every anonymous
 * client's. The server's own work (kind `internal`) and authenticated workers
 * (holding the `bots` scope: their uploads are action outputs, not a client's
 * requests) have no quota.
 */
import type { RequestContext } from '../context/requestContext.js';

/** A caller a quota is kept for. */
export interface QuotaCaller {
  /** Identity of the quota (principal kind and name, or the anonymous caller's host). */
  key: string;
  /** How messages name the caller: "token alice", "anonymous caller from 10.0.0.5". */
  label: string;
}

/**
 * The host part of a gRPC peer such as `ipv4:10.0.0.5:51234`, `[::1]:51234` or
 * `unix:/run/granary.sock` (every caller on a socket file is one host).
 */
export function peerHost(peer: string | undefined): string {
  if (!peer) return 'unknown';
  let rest = peer.replace(/^(ipv4|ipv6):/, '');
  if (rest.startsWith('unix:')) return 'unix';
  if (rest.startsWith('[')) return rest.slice(1, rest.indexOf(']') > 0 ? rest.indexOf(']') : undefined);
  const colon = rest.lastIndexOf(':');
  // One colon: HOST:PORT. More (a bare IPv6 address) or none: the whole text is the host.
  if (colon > 0 && rest.indexOf(':') === colon) rest = rest.slice(0, colon);
  return rest;
}

/** The caller whose quota `context` spends, or undefined when it has none. */
export function quotaCallerOf(context: RequestContext): QuotaCaller | undefined {
  const principal = context.principal;
  if (!principal || principal.kind === 'internal') return undefined;
  if (principal.kind === 'anonymous') {
    const host = peerHost(context.peer);
    return { key: `anonymous@${host}`, label: `anonymous caller from ${host}` };
  }
  if (principal.scopes.has('bots')) return undefined;
  return { key: `${principal.kind}:${principal.name}`, label: `${principal.kind} ${principal.name}` };
}
