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
