/**
 * Checks every written blob against its digest before the inner store may make it
 * visible. Wraps the CAS's backend; the Action Cache, whose keys are not content
 * hashes, uses its backend unwrapped.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, type DigestFunction, digestFunctionOf, formatDigest } from '../digest/digest.js';
import { invalidArgument } from '../util/status.js';
import { type BatchItem, type BlobStore, type BlobWriter, ForwardingBlobStore, putBuffers } from './blobStore.js';

export class VerifyingBlobStore extends ForwardingBlobStore {
  constructor(
    inner: BlobStore,
    /** Picks the hash function for a digest; classic functions differ in hash length. */
    private readonly functionFor: (digest: Digest) => DigestFunction = digestFunctionOf,
  ) {
    super(inner);
    // Batches only over a store that takes them together (a remote one, or the segment store's single
    // append), as the capability promises; over any other store, callers put each blob, concurrently.
    this.putBatch = inner.putBatch ? (context, items) => this.verifiedPutBatch(context, items) : undefined;
  }

  /** Checks every item first, so a batch with one bad blob stores none of them. */
  private async verifiedPutBatch(context: RequestContext, items: readonly BatchItem[]): Promise<void> {
    for (const { digest, data } of items) {
      if (data.length !== digest.sizeBytes) {
        throw invalidArgument(
          `received ${data.length} bytes but digest ${formatDigest(digest)} declares ${digest.sizeBytes}`,
        );
      }
      const actual = this.functionFor(digest).hashHex(data);
      if (actual !== digest.hash) {
        throw invalidArgument(`data does not match digest ${formatDigest(digest)}: its hash is ${actual}`);
      }
    }
    await putBuffers(context, this.inner, items);
  }

  override async put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    const inner = await this.inner.put(context, digest);
    const hasher = this.functionFor(digest).createHasher();
    let written = 0;
    return {
      write: async (chunk) => {
        written += chunk.length;
        if (written > digest.sizeBytes) {
          throw invalidArgument(
            `more data than the ${digest.sizeBytes} bytes declared by digest ${formatDigest(digest)}`,
          );
        }
        hasher.update(chunk);
        await inner.write(chunk);
      },
      commit: async () => {
        if (written !== digest.sizeBytes) {
          await inner.abort();
          throw invalidArgument(
            `received ${written} bytes but digest ${formatDigest(digest)} declares ${digest.sizeBytes}`,
          );
        }
        const actual = hasher.digest('hex');
        if (actual !== digest.hash) {
          await inner.abort();
          throw invalidArgument(`data does not match digest ${formatDigest(digest)}: its hash is ${actual}`);
        }
        await inner.commit();
      },
      abort: () => inner.abort(),
    };
  }
}
