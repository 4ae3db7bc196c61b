/**
 * ByteStream responses framed by hand around each chunk. The generated
 * encoder copies a chunk into a growing, zero-filled writer buffer and copies
 * that again when it finishes, and grpc-js then copies the result into its
 * frame: several short-lived megabytes per megabyte served, which kept V8's
 * collector busy. Here the tag and length of field 10 (`bytes data = 10`) are
 * written into the room a chunk has before it (src/storage/chunkHeadroom.ts),
 * and the service's serializer hands that memory to grpc-js as it is.
 *
 * Where the chunk comes from decides who may reuse its memory:
 * - a chunk of READ_CHUNK_POOL, which ByteStream Read lends to the store
 *   (ReadOptions.chunkPool), goes back to the pool once grpc-js has copied the
 *   response into its frame (it does so synchronously, right after the
 *   serializer returns), so a read of any length cycles through a few buffers;
 * - a chunk with headroom made by the store for another reader is framed in
 *   place and never reused (another consumer may keep it);
 * - any other chunk (a view into a memory store or a segment record) is copied
 *   once into a buffer of READ_CHUNK_POOL, which goes back the same way.
 *
 * A framed response is still a valid ReadResponse object (`data` views the
 * chunk), so the generated serializer encodes it correctly too; its buffer is
 * then simply never given back.
 */
import { ByteStreamService, ReadResponse } from '../gen/google/bytestream/bytestream.js';
import { READ_CHUNK_BYTES } from '../storage/blobStore.js';
import { CHUNK_HEADROOM_BYTES, ChunkPool, wholeBufferOf } from '../storage/chunkHeadroom.js';

/** Field 10, wire type 2 (length-delimited). */
const DATA_TAG = (10 << 3) | 2;
/** Chunks shorter than this are copied into fresh memory rather than into a whole pooled megabyte. */
const SMALLEST_POOLED_CHUNK_BYTES = READ_CHUNK_BYTES / 2;

/**
 * The buffers ByteStream Read lends to stores and copies other chunks into
 * (shared by all calls). Free buffers kept: enough for the responses that
 * several concurrent reads have queued ahead of the socket.
 */
export const READ_CHUNK_POOL = new ChunkPool(READ_CHUNK_BYTES, 16);

const framed = Symbol('framed ReadResponse');

/** A ReadResponse carrying its own encoding. */
export interface FramedReadResponse extends ReadResponse {
  readonly [framed]: {
    readonly encoding: Buffer;
    /** The chunk of READ_CHUNK_POOL to give back once the encoding was copied, if any. */
    readonly pooledChunk: Buffer | undefined;
    serialized: boolean;
  };
}

/** The encoding of a ReadResponse whose only field is `data` = `chunk`, framed in place when it can be. */
export function frameReadResponse(chunk: Buffer): FramedReadResponse {
  const length = chunk.length;
  // proto3 leaves an empty field out.
  if (length === 0) return { data: chunk, [framed]: { encoding: chunk, pooledChunk: undefined, serialized: false } };
  const headerBytes = 1 + varintBytes(length);
  let data = chunk;
  let whole = wholeBufferOf(chunk);
  if (!whole) {
    if (length < SMALLEST_POOLED_CHUNK_BYTES || length > READ_CHUNK_POOL.bufferBytes) {
      const buffer = Buffer.allocUnsafe(headerBytes + length);
      writeHeader(buffer, 0, length);
      chunk.copy(buffer, headerBytes);
      return {
        data: buffer.subarray(headerBytes),
        [framed]: { encoding: buffer, pooledChunk: undefined, serialized: false },
      };
    }
    data = READ_CHUNK_POOL.take(length);
    chunk.copy(data);
    whole = wholeBufferOf(data) as Buffer;
  }
  const start = CHUNK_HEADROOM_BYTES - headerBytes;
  writeHeader(whole, start, length);
  const encoding = whole.subarray(start, CHUNK_HEADROOM_BYTES + length);
  const pooledChunk = READ_CHUNK_POOL.lent(data) ? data : undefined;
  return { data, [framed]: { encoding, pooledChunk, serialized: false } };
}

/** Writes the tag of `data` and the varint `length` at `position`. */
function writeHeader(buffer: Buffer, position: number, length: number): void {
  buffer[position++] = DATA_TAG;
  let rest = length;
  while (rest >= 0x80) {
    buffer[position++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  buffer[position] = rest;
}

function varintBytes(value: number): number {
  let bytes = 1;
  for (let rest = value >>> 7; rest > 0; rest >>>= 7) bytes++;
  return bytes;
}

/** The serializer of ReadResponse that passes framed responses through. */
export function serializeReadResponse(value: ReadResponse | FramedReadResponse): Buffer {
  const frame = (value as Partial<FramedReadResponse>)[framed];
  if (!frame) return Buffer.from(ReadResponse.encode(value).finish());
  const { pooledChunk } = frame;
  if (pooledChunk && !frame.serialized) {
    frame.serialized = true;
    // grpc-js copies the returned bytes before anything else runs; after that the chunk is free.
    queueMicrotask(() => READ_CHUNK_POOL.give(pooledChunk));
  }
  return frame.encoding;
}

/** The ByteStream service definition with the pass-through ReadResponse serializer; serve byteStreamServer with it. */
export const FramedByteStreamService: typeof ByteStreamService = {
  ...ByteStreamService,
  read: { ...ByteStreamService.read, responseSerialize: serializeReadResponse },
};
