/**
 * How operation listings are filtered, ordered and paged, shared by the stores
 * that filter in code. The order (queue time, then name) and the page token (the
 * last operation of the page) are what a database store would use as its index
 * and its keyset cursor, so tokens stay valid while operations come and go.
 */
import { invalidArgument } from '../util/status.js';
import type { OperationQuery } from './operationStore.js';
import type { OperationRecord } from './types.js';

/** The position of an operation in listings. */
export interface ListPosition {
  queuedAtMs: number;
  name: string;
}

/** Orders operations oldest first, then by name. */
export function queueOrder(a: ListPosition, b: ListPosition): number {
  return a.queuedAtMs - b.queuedAtMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** Whether an operation passes the query's filters (paging aside). */
export function matchesQuery(operation: OperationRecord, query: OperationQuery): boolean {
  if (query.stage !== undefined && operation.stage !== query.stage) return false;
  if (query.workerId !== undefined && operation.workerId !== query.workerId) return false;
  const metadata = operation.request.clientMetadata ?? {};
  if (query.toolName !== undefined && metadata.toolName !== query.toolName) return false;
  if (
    query.invocationId !== undefined &&
    metadata.toolInvocationId !== query.invocationId &&
    metadata.correlatedInvocationsId !== query.invocationId
  ) {
    return false;
  }
  return true;
}

/** The token of the page that starts after `last`. */
export function encodePageToken(last: ListPosition): string {
  return Buffer.from(JSON.stringify([last.queuedAtMs, last.name])).toString('base64url');
}

/** The position a token continues after; undefined for the first page; INVALID_ARGUMENT for a foreign token. */
export function decodePageToken(token: string | undefined): ListPosition | undefined {
  if (!token) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      Number.isSafeInteger(parsed[0]) &&
      typeof parsed[1] === 'string'
    ) {
      return { queuedAtMs: parsed[0] as number, name: parsed[1] as string };
    }
  } catch {
    // Reported below.
  }
  throw invalidArgument(`invalid page_token "${token}"`);
}
