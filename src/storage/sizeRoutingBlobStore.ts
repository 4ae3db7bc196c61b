/**
 * Sends each blob to one of two stores by its digest's declared size: small
 * blobs to a store made for many of them (a SegmentBlobStore), the others to
 * one made for large ones (a DiskBlobStore). The size is part of the key, so a
 * blob is always looked for where it was written.
 */
import type { RequestContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import {
  type BatchItem,
  type Blob,
  type BlobStore,
  type BlobWriter,
  type FindMissingOptions,
  putBuffers,
  type StorageUsage,
} from './blobStore.js';

export class SizeRoutingBlobStore implements BlobStore {
  readonly usage?: (context: RequestContext) => StorageUsage;
  readonly list?: (context: RequestContext) => Promise<Digest[]>;
  readonly localPath?: (context: RequestContext, digest: Digest) => string | undefined;
  readonly putBatch?: (context: RequestContext, items: readonly BatchItem[]) => Promise<void>;

  constructor(
    private readonly small: BlobStore,
    private readonly large: BlobStore,
    /** Blobs of at most this many bytes go to `small`. */
    readonly maximumSmallBytes: number,
  ) {
    if (small.usage && large.usage) {
      this.usage = (context) => {
        const a = small.usage?.(context) as StorageUsage;
        const b = large.usage?.(context) as StorageUsage;
        return {
          usedBytes: a.usedBytes + b.usedBytes,
          maximumBytes: a.maximumBytes + b.maximumBytes,
          blobCount: a.blobCount + b.blobCount,
        };
      };
    }
    if (small.list && large.list) {
      this.list = async (context) => [
        ...((await small.list?.(context)) ?? []),
        ...((await large.list?.(context)) ?? []),
      ];
    }
    if (small.putBatch || large.putBatch) {
      // Each side takes its share together when it can, one put each otherwise (putBuffers).
      this.putBatch = async (context, items) => {
        const smallItems: BatchItem[] = [];
        const largeItems: BatchItem[] = [];
        for (const item of items) (this.isSmall(item.digest) ? smallItems : largeItems).push(item);
        await Promise.all([
          smallItems.length > 0 ? putBuffers(context, small, smallItems) : undefined,
          largeItems.length > 0 ? putBuffers(context, large, largeItems) : undefined,
        ]);
      };
    }
    if (small.localPath || large.localPath) {
      this.localPath = (context, digest) => this.storeOf(digest).localPath?.(context, digest);
    }
  }

  async findMissing(context: RequestContext, digests: readonly Digest[], options?: FindMissingOptions) {
    const smallDigests: Digest[] = [];
    const largeDigests: Digest[] = [];
    for (const digest of digests) (this.isSmall(digest) ? smallDigests : largeDigests).push(digest);
    if (largeDigests.length === 0) return this.small.findMissing(context, smallDigests, options);
    if (smallDigests.length === 0) return this.large.findMissing(context, largeDigests, options);
    const [smallMissing, largeMissing] = await Promise.all([
      this.small.findMissing(context, smallDigests, options),
      this.large.findMissing(context, largeDigests, options),
    ]);
    return [...smallMissing, ...largeMissing];
  }

  get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    return this.storeOf(digest).get(context, digest);
  }

  put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    return this.storeOf(digest).put(context, digest);
  }

  private isSmall(digest: Digest): boolean {
    return digest.sizeBytes <= this.maximumSmallBytes;
  }

  private storeOf(digest: Digest): BlobStore {
    return this.isSmall(digest) ? this.small : this.large;
  }
}
