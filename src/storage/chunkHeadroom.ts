/**
 * Read chunks with spare bytes in front of them. A store that reads a chunk
 * from disk into a fresh buffer can leave room before it, so that whoever
 * sends the chunk on (ByteStream Read, src/grpc/readResponseFrames.ts) writes
 * its message header there instead of copying the whole chunk behind a header.
 *
 * Only chunks made here have headroom: a chunk that is a view into a larger
 * blob (a memory store's slice, a segment file's record) must never have the
 * bytes before it overwritten, so the room is known by identity, not guessed
 * from the chunk's byteOffset. A decorator that passes a chunk through keeps
 * its headroom; one that slices or copies it loses it, and the sender copies.
 * The headroom belongs to no one else, so writing a header there is safe even
 * if another consumer (a cache being filled) keeps the chunk itself.
 *
 * A chunk is fresh memory unless its reader lent the store a ChunkPool
 * (ReadOptions.chunkPool in blobStore.ts): then the chunk is one of the pool's
 * buffers, which the reader gives back when nothing refers to its bytes any
 * more, so a long read reuses a few buffers instead of allocating one per chunk.
 */

/** Room kept before a chunk: a protobuf tag and the longest varint of a 32-bit length. */
export const CHUNK_HEADROOM_BYTES = 1 + 5;

const headroomOf = new WeakMap<Buffer, Buffer>();

/** A fresh, uninitialised buffer of `length` bytes with CHUNK_HEADROOM_BYTES of room before it. */
export function allocateWithHeadroom(length: number): Buffer {
  const whole = Buffer.allocUnsafeSlow(CHUNK_HEADROOM_BYTES + length);
  const chunk = whole.subarray(CHUNK_HEADROOM_BYTES);
  headroomOf.set(chunk, whole);
  return chunk;
}

/** A shorter view of such a chunk from its start, keeping the headroom (a short read). */
export function truncateWithHeadroom(chunk: Buffer, length: number): Buffer {
  const whole = headroomOf.get(chunk);
  const shorter = chunk.subarray(0, length);
  if (whole) headroomOf.set(shorter, whole);
  return shorter;
}

/**
 * The buffer spanning `chunk` and the room before it (the chunk starts at
 * CHUNK_HEADROOM_BYTES into it), or undefined for a chunk made elsewhere.
 */
export function wholeBufferOf(chunk: Buffer): Buffer | undefined {
  return headroomOf.get(chunk);
}

/**
 * Buffers with headroom that a reader lends to the stores it reads from, and
 * gets back to reuse. Ownership, all of it explicit:
 *
 * - `take` hands out a buffer no one else holds: it was never handed out, or
 *   it was given back since. The store that takes it fills it and yields it;
 *   from then on it is the reader's chunk like any other.
 * - Only the reader that lent the pool gives a chunk back (`give`), once
 *   nothing refers to the chunk's bytes any more, since the next `take` may
 *   overwrite them. A chunk that is never given back is simply collected.
 * - Giving back a chunk twice, one the pool never handed out, or a view that
 *   does not start where the pool's chunk started does nothing.
 *
 * At most `maximumFreeBuffers` buffers wait in the pool; more given back are
 * dropped. Buffers hold `bufferBytes` after their headroom; a longer chunk
 * gets fresh memory that is not the pool's.
 */
export class ChunkPool {
  private readonly free: Buffer[] = [];
  /** Whole buffers made by this pool, and whether each is currently free. */
  private readonly isFree = new WeakMap<Buffer, boolean>();

  constructor(
    readonly bufferBytes: number,
    readonly maximumFreeBuffers: number,
  ) {}

  /** A chunk of `length` bytes with headroom, in a buffer of the pool when it fits. Its contents are undefined. */
  take(length: number): Buffer {
    if (length > this.bufferBytes) return allocateWithHeadroom(length);
    let whole = this.free.pop();
    if (!whole) {
      whole = Buffer.allocUnsafeSlow(CHUNK_HEADROOM_BYTES + this.bufferBytes);
    }
    this.isFree.set(whole, false);
    const chunk = whole.subarray(CHUNK_HEADROOM_BYTES, CHUNK_HEADROOM_BYTES + length);
    headroomOf.set(chunk, whole);
    return chunk;
  }

  /** Whether `chunk` is a chunk of this pool that has not been given back. */
  lent(chunk: Buffer): boolean {
    const whole = headroomOf.get(chunk);
    return (
      whole !== undefined &&
      this.isFree.get(whole) === false &&
      chunk.byteOffset === whole.byteOffset + CHUNK_HEADROOM_BYTES
    );
  }

  /** Gives a chunk back: its bytes may be overwritten by the next take. */
  give(chunk: Buffer): void {
    if (!this.lent(chunk)) return;
    const whole = headroomOf.get(chunk) as Buffer;
    this.isFree.set(whole, true);
    if (this.free.length < this.maximumFreeBuffers) this.free.push(whole);
  }
}
