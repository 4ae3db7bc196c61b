/**
 * Spreads blobs over several stores by weight: each digest goes to the shard
 * that wins the weighted rendezvous (rendezvous.ts), so every frontend with the
 * same shard list places every blob the same way, and adding a shard moves only
 * the blobs it wins. One copy per blob: redundancy is the job of `mirrored` or
 * `replicated` nodes under the shards.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey } from '../digest/digest.js';
import {
  type BatchItem,
  type Blob,
  type BlobStore,
  type BlobWriter,
  type FindMissingOptions,
  putBuffers,
  type StorageUsage,
} from './blobStore.js';
import { RendezvousPlacement } from './rendezvous.js';

/** A shard: its store, its share of the blobs (by weight) and a stable identity for placement. */
export interface Shard {
  readonly id: string;
  readonly weight: number;
  readonly store: BlobStore;
}

export class ShardingBlobStore implements BlobStore {
  private readonly placement: RendezvousPlacement<Shard>;
  readonly list?: (context: RequestContext) => Promise<Digest[]>;
  readonly usage?: (context: RequestContext) => StorageUsage;
  readonly localPath?: (context: RequestContext, digest: Digest) => string | undefined;

  constructor(readonly shards: readonly Shard[]) {
    this.placement = new RendezvousPlacement(shards);
    // A capability is offered when every shard offers it (a partial answer would mislead).
    if (shards.every((shard) => shard.store.list)) {
      this.list = async (context) => {
        const lists = await Promise.all(shards.map((shard) => shard.store.list?.(context) ?? []));
        return lists.flat();
      };
    }
    if (shards.every((shard) => shard.store.usage)) {
      this.usage = (context) => {
        const total: StorageUsage = { usedBytes: 0, maximumBytes: 0, blobCount: 0 };
        for (const shard of shards) {
          const usage = shard.store.usage?.(context);
          if (!usage) continue;
          total.usedBytes += usage.usedBytes;
          total.maximumBytes += usage.maximumBytes;
          total.blobCount += usage.blobCount;
        }
        return total;
      };
    }
    if (shards.every((shard) => shard.store.localPath)) {
      this.localPath = (context, digest) => this.shardOf(digest).localPath?.(context, digest);
    }
  }

  /** The store that holds (or would hold) a digest. */
  shardOf(digest: Digest): BlobStore {
    return (this.placement.place(digest.hash, 1)[0] as Shard).store;
  }

  async findMissing(context: RequestContext, digests: readonly Digest[], options?: FindMissingOptions) {
    const groups = this.group(digests, (digest) => digest);
    const answers = await Promise.all([...groups].map(([store, group]) => store.findMissing(context, group, options)));
    const missing = new Set(answers.flat().map(digestKey));
    // Keep the caller's order.
    return digests.filter((digest) => missing.has(digestKey(digest)));
  }

  get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    return this.shardOf(digest).get(context, digest);
  }

  put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    return this.shardOf(digest).put(context, digest);
  }

  /** Each shard's part of the batch in one call where the shard batches. */
  async putBatch(context: RequestContext, items: readonly BatchItem[]): Promise<void> {
    const groups = this.group(items, (item) => item.digest);
    await Promise.all([...groups].map(([store, group]) => putBuffers(context, store, group)));
  }

  private group<T>(items: readonly T[], digestOf: (item: T) => Digest): Map<BlobStore, T[]> {
    const groups = new Map<BlobStore, T[]>();
    for (const item of items) {
      const store = this.shardOf(digestOf(item));
      const group = groups.get(store);
      if (group) group.push(item);
      else groups.set(store, [item]);
    }
    return groups;
  }
}
