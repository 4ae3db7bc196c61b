/**
 * ByteStream ReadResponses framed by hand around each chunk. The generated
 * encoder copies a chunk into a growing, zero-filled writer buffer and copies
 * that again when it finishes, and grpc-js then copies the result into its
 * frame: several short-lived megabytes per megabyte served, which kept V8's
 * collector busy. Here a chunk is copied once, after the tag and length of
 * field 10 (`bytes data = 10`), into a buffer taken from a small pool; the
 * service's serializer hands that buffer to grpc-js as it is, and the buffer
 * goes back to the pool once grpc-js has copied it into its frame (it does so
 * synchronously, right after the serializer returns).
 *
 * A chunk the disk store read with room before it (src/storage/chunkHeadroom.ts)
 * is not copied at all: the header goes into that room and the response is the
 * store's own buffer, which is never pooled (another consumer may keep it).
 *
 * A framed response is still a valid ReadResponse object (`data` views the
 * chunk), so the generated serializer encodes it correctly too; its buffer is
 * then simply never reused.
 */
import { ByteStreamService, ReadResponse } from '../gen/google/bytestream/bytestream.js';
import { READ_CHUNK_BYTES } from '../storage/blobStore.js';
import { CHUNK_HEADROOM_BYTES, wholeBufferOf } from '../storage/chunkHeadroom.js';

/** Field 10, wire type 2 (length-delimited). */
const DATA_TAG = (10 << 3) | 2;
/** The tag and the longest varint length of a chunk (a 32-bit length). */
const MAXIMUM_HEADER_BYTES = CHUNK_HEADROOM_BYTES;
/** Buffers of this size are pooled: a full storage chunk and its header. */
const POOLED_BUFFER_BYTES = READ_CHUNK_BYTES + MAXIMUM_HEADER_BYTES;
/** Free buffers kept (shared by all calls). */
const MAXIMUM_POOLED_BUFFERS = 8;

const framed = Symbol('framed ReadResponse');

/** A ReadResponse carrying its own encoding. */
export interface FramedReadResponse extends ReadResponse {
  readonly [framed]: {
    readonly encoding: Buffer;
    readonly buffer: Buffer;
    readonly pooled: boolean;
    serialized: boolean;
  };
}

const pool: Buffer[] = [];

/** The encoding of a ReadResponse whose only field is `data` = `chunk`, in a pooled buffer when it fits. */
export function frameReadResponse(chunk: Buffer): FramedReadResponse {
  const length = chunk.length;
  // proto3 leaves an empty field out.
  if (length === 0)
    return { data: chunk, [framed]: { encoding: chunk, buffer: chunk, pooled: false, serialized: false } };
  const headerBytes = 1 + varintBytes(length);
  const whole = wholeBufferOf(chunk);
  if (whole) {
    const start = CHUNK_HEADROOM_BYTES - headerBytes;
    writeHeader(whole, start, length);
    const encoding = whole.subarray(start, CHUNK_HEADROOM_BYTES + length);
    return { data: chunk, [framed]: { encoding, buffer: whole, pooled: false, serialized: false } };
  }
  const totalBytes = headerBytes + length;
  const pooled = totalBytes <= POOLED_BUFFER_BYTES && totalBytes > POOLED_BUFFER_BYTES / 2;
  const buffer = pooled ? (pool.pop() ?? Buffer.allocUnsafeSlow(POOLED_BUFFER_BYTES)) : Buffer.allocUnsafe(totalBytes);
  writeHeader(buffer, 0, length);
  chunk.copy(buffer, headerBytes);
  return {
    data: buffer.subarray(headerBytes, totalBytes),
    [framed]: { encoding: buffer.subarray(0, totalBytes), buffer, pooled, serialized: false },
  };
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
  const { buffer } = frame;
  if (frame.pooled && !frame.serialized) {
    frame.serialized = true;
    // grpc-js copies the returned bytes before anything else runs; after that the buffer is free.
    queueMicrotask(() => {
      if (pool.length < MAXIMUM_POOLED_BUFFERS) pool.push(buffer);
    });
  }
  return frame.encoding;
}

/** The ByteStream service definition with the pass-through ReadResponse serializer; serve byteStreamServer with it. */
export const FramedByteStreamService: typeof ByteStreamService = {
  ...ByteStreamService,
  read: { ...ByteStreamService.read, responseSerialize: serializeReadResponse },
};
