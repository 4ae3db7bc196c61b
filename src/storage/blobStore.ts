/**
 * The one storage interface. Backends (memory, disk, remote) implement it and
 * decorators wrap it, so behaviours such as verification, sharding or size limits
 * are each a small file instead of a flag. The CAS and the Action Cache both use it:
 * the CAS keys blobs by their content digest, the Action Cache by a derived key.
 * Backends treat the digest as an opaque key and store whatever bytes were
 * written; checking content against the digest (hash and size) is the job of
 * VerifyingBlobStore, which wraps every CAS backend.
 */
import type { Digest } from '../digest/digest.js';

export interface FindMissingOptions {
  /**
   * Present blobs must not be evicted before this time (epoch ms). Used to keep
   * blobs referenced by a just-served Action Cache result alive for builds that
   * do not download outputs.
   */
  retainUntilMs?: number;
}

export interface BlobStore {
  /** Returns the digests that are absent. Presence checks refresh recency. */
  findMissing(digests: readonly Digest[], options?: FindMissingOptions): Promise<Digest[]>;
  /** Opens a blob, or returns undefined when it is absent. Refreshes recency. */
  get(digest: Digest): Promise<Blob | undefined>;
  /** Starts writing a blob. Nothing becomes visible before commit() resolves. */
  put(digest: Digest): Promise<BlobWriter>;
}

/** A readable blob. Reading may fail with NOT_FOUND if the blob vanishes meanwhile. */
export interface Blob {
  readonly sizeBytes: number;
  /** Streams [offset, offset + limit) in chunks; limit undefined means to the end. */
  read(offset?: number, limit?: number): AsyncIterable<Buffer>;
}

export interface BlobWriter {
  /** Appends a chunk; the caller must await each write before the next and must not reuse the chunk (the store may keep it until commit). */
  write(chunk: Buffer): Promise<void>;
  /** Makes the blob visible atomically. Fails, leaving nothing behind, if the data is wrong. */
  commit(): Promise<void>;
  /** Discards everything written. Safe to call more than once and after a failed commit. */
  abort(): Promise<void>;
}

/** Chunk size used when streaming blobs out of storage. */
export const READ_CHUNK_BYTES = 1024 * 1024;

/** Reads a whole blob into memory. */
export async function readAll(blob: Blob): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of blob.read()) chunks.push(chunk);
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/** Reads a whole blob, or undefined when absent. */
export async function getBuffer(store: BlobStore, digest: Digest): Promise<Buffer | undefined> {
  const blob = await store.get(digest);
  return blob ? readAll(blob) : undefined;
}

/** Writes a whole in-memory blob and commits it. */
export async function putBuffer(store: BlobStore, digest: Digest, data: Buffer): Promise<void> {
  const writer = await store.put(digest);
  try {
    await writer.write(data);
    await writer.commit();
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

/** Slices an in-memory buffer as Blob.read does, in bounded chunks. */
export function* sliceChunks(data: Buffer, offset = 0, limit?: number): Generator<Buffer> {
  const end = limit === undefined ? data.length : Math.min(data.length, offset + limit);
  for (let position = offset; position < end; position += READ_CHUNK_BYTES) {
    yield data.subarray(position, Math.min(end, position + READ_CHUNK_BYTES));
  }
}

/**
 * Base class for decorators: forwards every call to the wrapped store, so a
 * decorator overrides only what it changes.
 */
export class ForwardingBlobStore implements BlobStore {
  constructor(protected readonly inner: BlobStore) {}
  findMissing(digests: readonly Digest[], options?: FindMissingOptions): Promise<Digest[]> {
    return this.inner.findMissing(digests, options);
  }
  get(digest: Digest): Promise<Blob | undefined> {
    return this.inner.get(digest);
  }
  put(digest: Digest): Promise<BlobWriter> {
    return this.inner.put(digest);
  }
}
