/**
 * Keeps every blob in each of several stores (two disks, two nodes), so losing
 * one loses nothing: writes go to every mirror and succeed only when all
 * commit; reads take the first mirror that has the blob; an existence check
 * asks every mirror and copies a blob some mirrors lack from one that has it,
 * so mirrors that drifted apart (a replaced disk, a failed write) heal as
 * clients touch their blobs. A blob is reported missing only when no mirror has it.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey } from '../digest/digest.js';
import { mapLimited } from '../util/concurrency.js';
import {
  type Blob,
  type BlobStore,
  type BlobWriter,
  type FindMissingOptions,
  putChunks,
  type StorageUsage,
} from './blobStore.js';

/** Blobs copied between mirrors at once during a repair. */
const REPAIR_CONCURRENCY = 4;

export class MirroredBlobStore implements BlobStore {
  readonly usage?: (context: RequestContext) => StorageUsage;
  readonly list?: (context: RequestContext) => Promise<Digest[]>;

  constructor(readonly mirrors: readonly BlobStore[]) {
    if (mirrors.length === 0) throw new Error('a mirrored store needs at least one mirror');
    // Each mirror holds everything: the smallest one bounds the whole.
    if (mirrors.every((mirror) => mirror.usage)) {
      this.usage = (context) => {
        const usages = mirrors.map((mirror) => mirror.usage?.(context) as StorageUsage);
        return usages.reduce((smallest, usage) => (usage.maximumBytes < smallest.maximumBytes ? usage : smallest));
      };
    }
    if (mirrors.every((mirror) => mirror.list)) {
      this.list = async (context) => {
        const all = new Map<string, Digest>();
        for (const mirror of mirrors)
          for (const digest of (await mirror.list?.(context)) ?? []) all.set(digestKey(digest), digest);
        return [...all.values()];
      };
    }
  }

  async findMissing(context: RequestContext, digests: readonly Digest[], options?: FindMissingOptions) {
    const answers = await Promise.all(this.mirrors.map((mirror) => mirror.findMissing(context, digests, options)));
    const missingFrom = answers.map((missing) => new Set(missing.map(digestKey)));
    const lost: Digest[] = [];
    const repairs: Array<{ digest: Digest; source: BlobStore; targets: BlobStore[] }> = [];
    for (const digest of digests) {
      const key = digestKey(digest);
      const holders = this.mirrors.filter((_, index) => !missingFrom[index]?.has(key));
      if (holders.length === 0) lost.push(digest);
      else if (holders.length < this.mirrors.length) {
        const targets = this.mirrors.filter((_, index) => missingFrom[index]?.has(key));
        repairs.push({ digest, source: holders[0] as BlobStore, targets });
      }
    }
    await mapLimited(repairs, REPAIR_CONCURRENCY, async ({ digest, source, targets }) => {
      const blob = await source.get(context, digest);
      // Gone from its only holder meanwhile: then it is missing after all.
      if (!blob) return void lost.push(digest);
      for (const target of targets) await putChunks(context, target, digest, blob.read());
    });
    return lost;
  }

  async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    let firstError: unknown;
    for (const mirror of this.mirrors) {
      try {
        const blob = await mirror.get(context, digest);
        if (blob) return blob;
      } catch (error) {
        // An unreachable mirror is what mirrors are for: try the next one.
        firstError ??= error;
      }
    }
    if (firstError !== undefined) throw firstError;
    return undefined;
  }

  async put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    const writers: BlobWriter[] = [];
    try {
      for (const mirror of this.mirrors) writers.push(await mirror.put(context, digest));
    } catch (error) {
      await Promise.all(writers.map((writer) => writer.abort()));
      throw error;
    }
    return {
      write: async (chunk) => {
        await Promise.all(writers.map((writer) => writer.write(chunk)));
      },
      commit: async () => {
        const results = await Promise.allSettled(writers.map((writer) => writer.commit()));
        const failed = results.find((result) => result.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
      },
      abort: async () => {
        await Promise.all(writers.map((writer) => writer.abort()));
      },
    };
  }
}
