/**
 * Compressed transfers of CAS blobs: writing a compressed upload into a BlobStore
 * (which, for the CAS, is the VerifyingBlobStore: the decompressed bytes are
 * checked against the uncompressed digest before anything becomes visible).
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, formatDigest, isEmptyDigest } from '../digest/digest.js';
import type { BlobStore, BlobWriter } from '../storage/blobStore.js';
import { invalidArgument } from '../util/status.js';
import { decompressBuffer, ZstdDecoder } from './zstd.js';

/**
 * Feeds compressed chunks to a decoder and the decompressed output to a writer,
 * refusing more output than the digest declares before it is produced.
 */
export class DecompressingWriter {
  private readonly decoder = new ZstdDecoder();
  private written: number;

  /** `alreadyWrittenBytes`: what the writer holds from earlier streams of a resumed upload. */
  constructor(
    private readonly writer: BlobWriter,
    private readonly digest: Digest,
    alreadyWrittenBytes = 0,
  ) {
    this.written = alreadyWrittenBytes;
  }

  /** Uncompressed bytes handed to the writer so far, counting earlier streams. */
  get writtenBytes(): number {
    return this.written;
  }

  async write(compressed: Uint8Array): Promise<void> {
    for (const part of this.decoder.push(compressed)) await this.forward(part);
  }

  /** Ends the compressed stream (failing if it is truncated) and writes the rest; does not commit. */
  async end(): Promise<void> {
    const last = this.decoder.end();
    if (last) await this.forward(last);
  }

  private async forward(part: Buffer): Promise<void> {
    if (this.written + part.length > this.digest.sizeBytes) {
      throw invalidArgument(
        `compressed data decompresses to more than the ${this.digest.sizeBytes} bytes declared by digest ${formatDigest(this.digest)}`,
      );
    }
    this.written += part.length;
    await this.writer.write(part);
  }
}

/** Stores a blob sent zstd-compressed in one buffer (BatchUpdateBlobs). */
export async function putCompressedBuffer(
  context: RequestContext,
  store: BlobStore,
  digest: Digest,
  compressed: Uint8Array,
): Promise<void> {
  if (isEmptyDigest(digest)) {
    // Nothing to store, but the data must still be a valid stream of nothing.
    decompressBuffer(compressed, 0);
    return;
  }
  const writer = await store.put(context, digest);
  try {
    const decompressing = new DecompressingWriter(writer, digest);
    await decompressing.write(compressed);
    await decompressing.end();
    await writer.commit();
  } catch (error) {
    await writer.abort();
    throw error;
  }
}
