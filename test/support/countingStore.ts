/** A memory store that counts the blobs written to it, for tests of "uploads only what is missing". */
import type { RequestContext } from '../../src/context/requestContext.js';
import type { Digest } from '../../src/digest/digest.js';
import { type BlobWriter, ForwardingBlobStore } from '../../src/storage/blobStore.js';
import { MemoryBlobStore } from '../../src/storage/memoryBlobStore.js';

/** Counts the blobs actually written. */
export class CountingStore extends ForwardingBlobStore {
  puts = 0;
  constructor() {
    super(new MemoryBlobStore());
  }
  override async put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    this.puts++;
    return this.inner.put(context, digest);
  }
}
