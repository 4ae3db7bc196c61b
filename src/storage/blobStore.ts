/**
 * The one storage interface. Backends (memory, disk, remote) implement it and
 * decorators wrap it, so behaviours such as verification, sharding or size limits
 * are each a small file instead of a flag. The CAS and the Action Cache both use it:
 * the CAS keys blobs by their content digest, the Action Cache by a derived key.
 * Backends treat the digest as an opaque key and store whatever bytes were
 * written; checking content against the digest (hash and size) is the job of
 * VerifyingBlobStore, which wraps every CAS backend.
 */
import type { RequestContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import type { ChunkPool } from './chunkHeadroom.js';

export interface FindMissingOptions {
  /**
   * Present blobs must not be evicted before this time (epoch ms). Used to keep
   * blobs referenced by a just-served Action Cache result alive for builds that
   * do not download outputs.
   */
  retainUntilMs?: number;
}

/** How full a store is, as the store itself counts it (the server and metrics read it). */
export interface StorageUsage {
  usedBytes: number;
  maximumBytes: number;
  blobCount: number;
}

/** A small in-memory blob for putBatch. */
export interface BatchItem {
  digest: Digest;
  data: Buffer;
}

/**
 * Three operations every store has, and optional capabilities that some stores
 * have. A store offers a capability by defining the method; decorators offer
 * whatever their inner stores offer (ForwardingBlobStore passes each through), so
 * callers test for the method on the store they were given, whatever the graph
 * behind it: `if (store.list) ...`, never `instanceof` or a peek at the config.
 *
 * Every method takes the request context first. A store stops work for a caller
 * whose context aborted: a blob opened by get stops streaming, and a remote store
 * cancels its calls. A write is driven by its caller, who aborts it.
 */
export interface BlobStore {
  /** Returns the digests that are absent. Presence checks refresh recency. */
  findMissing(context: RequestContext, digests: readonly Digest[], options?: FindMissingOptions): Promise<Digest[]>;
  /** Opens a blob, or returns undefined when it is absent. Refreshes recency. */
  get(context: RequestContext, digest: Digest): Promise<Blob | undefined>;
  /** Starts writing a blob. Nothing becomes visible before commit() resolves. */
  put(context: RequestContext, digest: Digest): Promise<BlobWriter>;

  /**
   * Capability: every stored key. For stores keyed by derived digests (asset
   * records), whose contents must be walked after a restart.
   */
  list?(context: RequestContext): Promise<Digest[]>;
  /**
   * Capability: the local file holding a committed blob (refreshing its recency),
   * or undefined when absent or not held in a file (the empty blob never is).
   * Callers may hard-link or read the file but must never write to it.
   */
  localPath?(context: RequestContext, digest: Digest): string | undefined;
  /**
   * Capability: writes several small in-memory blobs in one round trip (a remote
   * store's BatchUpdateBlobs, the segment store's single append); fails on the
   * first blob that fails. Callers without it write each blob with put (see
   * putBuffers).
   */
  putBatch?(context: RequestContext, items: readonly BatchItem[]): Promise<void>;
  /** Capability: what the store holds and may hold. Stores without a bound (remote ones) lack it. */
  usage?(context: RequestContext): StorageUsage;
}

/** How a blob is read. */
export interface ReadOptions {
  /**
   * Buffers the reader lends for the chunks (see Blob.read). Only the reader
   * that consumes the chunks last may lend its pool: a decorator that keeps a
   * chunk after yielding it (a cache fill) must not pass its caller's pool on.
   */
  chunkPool?: ChunkPool;
}

/** A readable blob. Reading may fail with NOT_FOUND if the blob vanishes meanwhile. */
export interface Blob {
  readonly sizeBytes: number;
  /**
   * Streams [offset, offset + limit) in chunks; limit undefined means to the end.
   *
   * Who owns a chunk: the reader, always. The store never writes to a chunk it
   * has yielded, so by default a reader may keep every chunk as long as it
   * likes. A reader that passes `options.chunkPool` lets a store that reads
   * into memory of its own (a file read) take that memory from the pool; the
   * reader then gives each such chunk back to its pool (ChunkPool.give) once
   * nothing refers to its bytes, or never. Stores that make chunks another way
   * (views of memory they hold) ignore the pool, and so do decorators that do
   * not pass the options on, which is always safe.
   */
  read(offset?: number, limit?: number, options?: ReadOptions): AsyncIterable<Buffer>;
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
export async function getBuffer(
  context: RequestContext,
  store: BlobStore,
  digest: Digest,
): Promise<Buffer | undefined> {
  const blob = await store.get(context, digest);
  return blob ? readAll(blob) : undefined;
}

/** Writes a whole in-memory blob and commits it. */
export async function putBuffer(
  context: RequestContext,
  store: BlobStore,
  digest: Digest,
  data: Buffer,
): Promise<void> {
  const writer = await store.put(context, digest);
  try {
    await writer.write(data);
    await writer.commit();
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

/**
 * Writes several in-memory blobs: in one round trip when the store offers
 * putBatch, otherwise one put each.
 */
export async function putBuffers(
  context: RequestContext,
  store: BlobStore,
  items: readonly BatchItem[],
): Promise<void> {
  if (store.putBatch) {
    await store.putBatch(context, items);
    return;
  }
  for (const item of items) await putBuffer(context, store, item.digest, item.data);
}

/** Writes a blob from any chunk source (a file, a generated tarball) and commits it. */
export async function putChunks(
  context: RequestContext,
  store: BlobStore,
  digest: Digest,
  chunks: Iterable<Buffer> | AsyncIterable<Buffer>,
): Promise<void> {
  const writer = await store.put(context, digest);
  try {
    for await (const chunk of chunks) await writer.write(chunk);
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
 * decorator overrides only what it changes. It offers exactly the capabilities the
 * inner store offers, each passed through, unless the subclass defines the method
 * itself (then the subclass's method is used, whether the inner store has it or not).
 */
export class ForwardingBlobStore implements BlobStore {
  list?(context: RequestContext): Promise<Digest[]>;
  localPath?(context: RequestContext, digest: Digest): string | undefined;
  putBatch?(context: RequestContext, items: readonly BatchItem[]): Promise<void>;
  usage?(context: RequestContext): StorageUsage;

  constructor(protected readonly inner: BlobStore) {
    // Only assigned when absent: a subclass's own method lives on its prototype and is already visible here.
    if (!this.list && inner.list) {
      const list = inner.list;
      this.list = (context) => list.call(inner, context);
    }
    if (!this.localPath && inner.localPath) {
      const localPath = inner.localPath;
      this.localPath = (context, digest) => localPath.call(inner, context, digest);
    }
    if (!this.putBatch && inner.putBatch) {
      const putBatch = inner.putBatch;
      this.putBatch = (context, items) => putBatch.call(inner, context, items);
    }
    if (!this.usage && inner.usage) {
      const usage = inner.usage;
      this.usage = (context) => usage.call(inner, context);
    }
  }
  findMissing(context: RequestContext, digests: readonly Digest[], options?: FindMissingOptions): Promise<Digest[]> {
    return this.inner.findMissing(context, digests, options);
  }
  get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    return this.inner.get(context, digest);
  }
  put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    return this.inner.put(context, digest);
  }
}
