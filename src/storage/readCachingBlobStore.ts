/**
 * A fast store (memory, local disk) in front of a slow one (a remote node, a
 * big disk): reads are served from the fast store when it has the blob, and a
 * blob read whole from the slow store is copied into the fast one as it streams
 * by. The slow store stays the source of truth: writes, existence checks,
 * listings and sizes are the slow store's, so evictions from the fast store
 * never make a blob look missing.
 */
import type { RequestContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import type { BatchItem, Blob, BlobStore, BlobWriter, FindMissingOptions, StorageUsage } from './blobStore.js';

export class ReadCachingBlobStore implements BlobStore {
  readonly list?: (context: RequestContext) => Promise<Digest[]>;
  readonly usage?: (context: RequestContext) => StorageUsage;
  readonly putBatch?: (context: RequestContext, items: readonly BatchItem[]) => Promise<void>;
  readonly localPath?: (context: RequestContext, digest: Digest) => string | undefined;

  constructor(
    readonly fast: BlobStore,
    readonly slow: BlobStore,
  ) {
    const { list, usage, putBatch } = slow;
    if (list) this.list = (context) => list.call(slow, context);
    if (usage) this.usage = (context) => usage.call(slow, context);
    if (putBatch) this.putBatch = (context, items) => putBatch.call(slow, context, items);
    // A local file exists only for blobs the fast store holds; callers fall back to get otherwise.
    const localPath = fast.localPath;
    if (localPath) this.localPath = (context, digest) => localPath.call(fast, context, digest);
  }

  findMissing(context: RequestContext, digests: readonly Digest[], options?: FindMissingOptions): Promise<Digest[]> {
    return this.slow.findMissing(context, digests, options);
  }

  put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    return this.slow.put(context, digest);
  }

  async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    // The fast store is only a cache: any failure there falls through to the slow store.
    const cached = await this.fast.get(context, digest).catch(() => undefined);
    if (cached) return cached;
    const blob = await this.slow.get(context, digest);
    if (!blob) return undefined;
    return {
      sizeBytes: blob.sizeBytes,
      // The fill keeps chunks after yielding them, so it never passes the reader's chunk pool on.
      read: (offset = 0, limit, options) =>
        offset === 0 && (limit === undefined || limit >= blob.sizeBytes)
          ? this.readFilling(context, digest, blob)
          : blob.read(offset, limit, options),
    };
  }

  /** Streams a whole blob from the slow store, writing it into the fast store on the way. */
  private async *readFilling(context: RequestContext, digest: Digest, blob: Blob): AsyncGenerator<Buffer> {
    let fill: BlobWriter | undefined = await this.fast.put(context, digest).catch(() => undefined);
    let complete = false;
    try {
      for await (const chunk of blob.read()) {
        if (fill) {
          // A failing fill only stops the filling; the reader still gets the blob.
          try {
            await fill.write(chunk);
          } catch {
            await fill.abort().catch(() => undefined);
            fill = undefined;
          }
        }
        yield chunk;
      }
      complete = true;
    } finally {
      if (fill) {
        if (complete) await fill.commit().catch(() => fill?.abort().catch(() => undefined));
        else await fill.abort().catch(() => undefined);
      }
    }
  }
}
