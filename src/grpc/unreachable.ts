/**
 * Why a server could not be reached, in plain words, from a failed call's error.
 * grpc-js reports a failed connection as UNAVAILABLE with text such as "No
 * connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:8980.
 * Resolution note: "; people want "connection refused".
 */
import { Code } from '../util/status.js';

/** The system's error codes a connection attempt ends with, and what they mean. */
const CONNECT_FAILURES: ReadonlyArray<[RegExp, string]> = [
  [/ECONNREFUSED/, 'connection refused'],
  [/ENOTFOUND|EAI_AGAIN|Name resolution failed/i, 'the host name does not resolve'],
  [/ETIMEDOUT|connect timeout/i, 'the connection timed out'],
  [/EHOSTUNREACH/, 'the host is unreachable'],
  [/ENETUNREACH/, 'the network is unreachable'],
  [/ECONNRESET/, 'the connection was reset'],
  [/ENOENT/, 'no such socket'],
];

/**
 * The reason a call failed to reach its server ("connection refused", ...), or
 * undefined when it reached it (the server answered with an error of its own).
 */
export function unreachableReason(error: { code?: number; details?: string; message?: string }): string | undefined {
  if (error.code !== Code.UNAVAILABLE) return undefined;
  const text = error.details || error.message || '';
  for (const [pattern, reason] of CONNECT_FAILURES) if (pattern.test(text)) return reason;
  if (/No connection established|Connection dropped|failed to connect/i.test(text)) {
    const last = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/.exec(text)?.[1];
    return last ? `no connection (${last})` : 'no connection';
  }
  return undefined;
}
