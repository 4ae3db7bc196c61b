/**
 * The one interface for keyed records (action results, Remote Asset records):
 * small values under string keys, with a codec turning values into bytes and a
 * paged listing by key prefix. The action cache and the asset store are written
 * against it, so where records live (a BlobStore today, PostgreSQL for shared
 * asset records) is a choice of implementation, not of the services.
 *
 * Conventions for implementations (BlobRecordStore here; a database-backed store
 * elsewhere):
 * - Every method takes the request context first and stops for an aborted caller.
 * - `put` replaces any record under the same key; a reader sees the old or the
 *   new record, never a mix.
 * - A record that no longer decodes reads as absent (get) and is skipped (list):
 *   a corrupt or foreign entry is a miss, never an error the client sees.
 * - `list` returns records in ascending key order (by UTF-16 code units, as
 *   JavaScript compares strings), at most `pageSize` at a time; `nextPageToken`
 *   is opaque to callers and absent on the last page. A page token is valid
 *   across writes: records written after it was issued may or may not appear.
 */
import type { RequestContext } from '../context/requestContext.js';

/**
 * Turns a record into bytes and back. `decode` returns undefined for bytes that
 * are not a record of this kind (old formats, corruption) rather than throwing.
 */
export interface RecordCodec<Value> {
  encode(value: Value): Buffer;
  decode(data: Buffer): Value | undefined;
  /**
   * The key a value is stored under, when the value carries its own identity
   * (an asset record does; an ActionResult does not). Stores that keep only
   * the value (BlobRecordStore) need it to list records and use it to refuse a
   * value found under another key.
   */
  keyOf?(value: Value): string;
}

/** One record of a listing. */
export interface KeyedRecord<Value> {
  readonly key: string;
  readonly value: Value;
}

export interface ListRecordsOptions {
  /** Only keys starting with this ('' or absent: every key). */
  readonly prefix?: string;
  /** Most records in one page (DEFAULT_LIST_PAGE_SIZE when absent). */
  readonly pageSize?: number;
  /** A previous page's nextPageToken; the first page when absent. */
  readonly pageToken?: string;
}

export interface RecordPage<Value> {
  readonly records: KeyedRecord<Value>[];
  /** Pass as pageToken for the next page; absent on the last page. */
  readonly nextPageToken?: string;
}

/** Page size of a listing that asks for none. */
export const DEFAULT_LIST_PAGE_SIZE = 1000;

/** Keyed records of one kind; see the file comment for the rules every implementation keeps. */
export interface RecordStore<Value> {
  /** The record under `key`, or undefined. */
  get(context: RequestContext, key: string): Promise<Value | undefined>;
  /** Stores `value` under `key`, replacing what was there. */
  put(context: RequestContext, key: string, value: Value): Promise<void>;
  /** One page of records, in ascending key order. */
  list(context: RequestContext, options?: ListRecordsOptions): Promise<RecordPage<Value>>;
}

/** Every record of a store (optionally under a prefix), page by page. */
export async function* allRecords<Value>(
  context: RequestContext,
  store: RecordStore<Value>,
  options: Omit<ListRecordsOptions, 'pageToken'> = {},
): AsyncGenerator<KeyedRecord<Value>> {
  let pageToken: string | undefined;
  do {
    const page = await store.list(context, { ...options, pageToken });
    yield* page.records;
    pageToken = page.nextPageToken;
  } while (pageToken !== undefined);
}
