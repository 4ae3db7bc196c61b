/**
 * In-memory backend: for tests, benchmarks and small caches in front of slower
 * stores. Bounded by total size with LRU eviction.
 */
import { type RequestContext, throwIfAborted } from '../context/requestContext.js';
import { type Digest, digestKey, isEmptyDigest } from '../digest/digest.js';
import { invalidArgument } from '../util/status.js';
import {
  type Blob,
  type BlobStore,
  type BlobWriter,
  type FindMissingOptions,
  type StorageUsage,
  sliceChunks,
} from './blobStore.js';
import { LruIndex } from './lruIndex.js';

const EMPTY = Buffer.alloc(0);

export class MemoryBlobStore implements BlobStore {
  private readonly blobs = new Map<string, Buffer>();
  private readonly index: LruIndex;

  constructor(maximumSizeBytes = 1024 * 1024 * 1024, now: () => number = Date.now) {
    this.index = new LruIndex(maximumSizeBytes, now);
  }

  async findMissing(
    _context: RequestContext,
    digests: readonly Digest[],
    options: FindMissingOptions = {},
  ): Promise<Digest[]> {
    const missing: Digest[] = [];
    for (const digest of digests) {
      if (isEmptyDigest(digest)) continue;
      if (!this.index.touch(digestKey(digest), options.retainUntilMs)) missing.push(digest);
    }
    return missing;
  }

  async list(_context: RequestContext): Promise<Digest[]> {
    return this.index.digests();
  }

  usage(_context: RequestContext): StorageUsage {
    return { usedBytes: this.index.sizeBytes, maximumBytes: this.index.maximumSizeBytes, blobCount: this.index.count };
  }

  async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    if (isEmptyDigest(digest)) return bufferBlob(EMPTY);
    const key = digestKey(digest);
    const data = this.blobs.get(key);
    if (!data) return undefined;
    this.index.touch(key);
    return bufferBlob(data, context);
  }

  async put(_context: RequestContext, digest: Digest): Promise<BlobWriter> {
    const chunks: Buffer[] = [];
    let written = 0;
    let done = false;
    return {
      write: async (chunk) => {
        if (done) throw invalidArgument('write after the blob was committed or aborted');
        written += chunk.length;
        chunks.push(chunk);
      },
      commit: async () => {
        if (done) throw invalidArgument('blob already committed or aborted');
        done = true;
        const key = digestKey(digest);
        for (const victim of this.index.makeRoom(written, key)) this.blobs.delete(victim);
        // Copy so the store never aliases a caller's (or a gRPC message's) buffer.
        this.blobs.set(key, Buffer.concat(chunks, written));
        this.index.add(key, written);
      },
      abort: async () => {
        done = true;
        chunks.length = 0;
      },
    };
  }
}

/** A Blob over bytes in memory; with a context, reading stops between chunks once it aborts. */
export function bufferBlob(data: Buffer, context?: RequestContext): Blob {
  return {
    sizeBytes: data.length,
    read: (offset = 0, limit?: number) => chunksUntilAborted(sliceChunks(data, offset, limit), context),
  };
}

async function* chunksUntilAborted(
  chunks: Iterable<Buffer>,
  context: RequestContext | undefined,
): AsyncGenerator<Buffer> {
  for (const chunk of chunks) {
    if (context) throwIfAborted(context);
    yield chunk;
  }
}
