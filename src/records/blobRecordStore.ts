/**
 * RecordStore over a BlobStore: a record's bytes are stored under the SHA-256 of
 * its key (the derived keys the action cache and the asset store have always
 * used, so records written before this module still read). Listing walks the
 * BlobStore's `list` capability and recovers keys through the codec's `keyOf`,
 * so it is for start-up walks and small stores, not for hot paths; a store whose
 * BlobStore or codec cannot list reports UNIMPLEMENTED.
 */
import type { RequestContext } from '../context/requestContext.js';
import { throwIfAborted } from '../context/requestContext.js';
import { type Digest, SHA256 } from '../digest/digest.js';
import { type BlobStore, getBuffer, putBuffer } from '../storage/blobStore.js';
import { mapLimited } from '../util/concurrency.js';
import { invalidArgument, unimplemented } from '../util/status.js';
import {
  DEFAULT_LIST_PAGE_SIZE,
  type KeyedRecord,
  type ListRecordsOptions,
  type RecordCodec,
  type RecordPage,
  type RecordStore,
} from './recordStore.js';

/** Records read at once while listing. */
const LIST_READ_CONCURRENCY = 8;

/** The BlobStore key of a record key; its size field is unused (0). */
export function recordBlobKey(key: string): Digest {
  return { hash: SHA256.createHasher().update(key).digest('hex'), sizeBytes: 0 };
}

export class BlobRecordStore<Value> implements RecordStore<Value> {
  constructor(
    private readonly blobs: BlobStore,
    private readonly codec: RecordCodec<Value>,
  ) {}

  async get(context: RequestContext, key: string): Promise<Value | undefined> {
    const data = await getBuffer(context, this.blobs, recordBlobKey(key));
    if (!data) return undefined;
    const value = this.codec.decode(data);
    // Keys are hashes; when the value names its key, check it so a slip can never serve another record.
    if (value === undefined || (this.codec.keyOf && this.codec.keyOf(value) !== key)) return undefined;
    return value;
  }

  async put(context: RequestContext, key: string, value: Value): Promise<void> {
    if (this.codec.keyOf && this.codec.keyOf(value) !== key) {
      throw invalidArgument('a record must be stored under its own key');
    }
    await putBuffer(context, this.blobs, recordBlobKey(key), this.codec.encode(value));
  }

  async list(context: RequestContext, options: ListRecordsOptions = {}): Promise<RecordPage<Value>> {
    const keyOf = this.codec.keyOf;
    if (!this.blobs.list || !keyOf) {
      throw unimplemented('these records cannot be listed (their store or their codec cannot name keys)');
    }
    const pageSize = options.pageSize ?? DEFAULT_LIST_PAGE_SIZE;
    if (!(Number.isSafeInteger(pageSize) && pageSize > 0)) throw invalidArgument('pageSize must be a positive integer');
    const prefix = options.prefix ?? '';
    const after = options.pageToken;
    const found: KeyedRecord<Value>[] = [];
    await mapLimited(await this.blobs.list(context), LIST_READ_CONCURRENCY, async (blobKey) => {
      throwIfAborted(context);
      const data = await getBuffer(context, this.blobs, blobKey).catch(() => undefined);
      const value = data ? this.codec.decode(data) : undefined;
      if (value === undefined) return;
      const key = keyOf(value);
      if (recordBlobKey(key).hash !== blobKey.hash) return;
      if (!key.startsWith(prefix) || (after !== undefined && key <= after)) return;
      found.push({ key, value });
    });
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const records = found.slice(0, pageSize);
    const last = records[records.length - 1];
    return found.length > pageSize && last ? { records, nextPageToken: last.key } : { records };
  }
}
