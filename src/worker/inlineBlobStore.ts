/**
 * The remote CAS as one action sees it: blobs that came with its lease (see
 * execution/leaseBlobs.ts) are served from memory, everything else is read from
 * the CAS. This store trusts nothing it was given: every reader of it (the local
 * cache's verifying install, LocalCache.getBuffer) checks content against the
 * digest, exactly as for a blob fetched over the network.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey } from '../digest/digest.js';
import type { InlineBlob } from '../gen/granary/worker/v1/lease.js';
import { type Blob, type BlobStore, ForwardingBlobStore, sliceChunks } from '../storage/blobStore.js';

export class InlineBlobStore extends ForwardingBlobStore {
  private readonly blobs = new Map<string, Buffer>();

  constructor(remote: BlobStore, blobs: readonly InlineBlob[]) {
    super(remote);
    for (const blob of blobs) {
      // A blob whose length contradicts its digest is left out: the CAS is asked instead.
      if (blob.digest && blob.data.length === blob.digest.sizeBytes) {
        this.blobs.set(digestKey(blob.digest), Buffer.from(blob.data));
      }
    }
  }

  override async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    const data = this.blobs.get(digestKey(digest));
    if (data === undefined) return this.inner.get(context, digest);
    return { sizeBytes: data.length, read: (offset, limit) => toAsync(sliceChunks(data, offset, limit)) };
  }
}

async function* toAsync(chunks: Iterable<Buffer>): AsyncGenerator<Buffer> {
  yield* chunks;
}
