import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ByteStreamService, ReadResponse } from '../gen/google/bytestream/bytestream.js';
import { READ_CHUNK_BYTES } from '../storage/blobStore.js';
import { allocateWithHeadroom, truncateWithHeadroom } from '../storage/chunkHeadroom.js';
import {
  FramedByteStreamService,
  frameReadResponse,
  READ_CHUNK_POOL,
  serializeReadResponse,
} from './readResponseFrames.js';

describe('ReadResponse framing', () => {
  it('encodes chunks of every varint length exactly as the generated encoder does', () => {
    for (const size of [0, 1, 127, 128, 16_383, 16_384, READ_CHUNK_BYTES / 2 + 1, READ_CHUNK_BYTES, 2_097_152]) {
      const chunk = randomBytes(size);
      const encoded = Buffer.from(serializeReadResponse(frameReadResponse(chunk)));
      assert.deepEqual(encoded, Buffer.from(ReadResponse.encode({ data: chunk }).finish()), `${size} bytes`);
      assert.deepEqual(Buffer.from(ReadResponse.decode(encoded).data), chunk);
    }
  });

  it('reuses a buffer only after its response was serialized, so earlier copies stay intact', async () => {
    const first = randomBytes(READ_CHUNK_BYTES);
    const second = randomBytes(READ_CHUNK_BYTES);
    const framedFirst = frameReadResponse(first);
    const copyOfFirst = Buffer.from(serializeReadResponse(framedFirst)); // what grpc-js does at once
    await Promise.resolve(); // the buffer returns to the pool
    const framedSecond = frameReadResponse(second);
    const third = frameReadResponse(randomBytes(READ_CHUNK_BYTES)); // not serialized yet: its own buffer
    assert.deepEqual(Buffer.from(ReadResponse.decode(copyOfFirst).data), first);
    assert.deepEqual(Buffer.from(framedSecond.data), second);
    assert.notEqual(third.data.buffer, framedSecond.data.buffer);
  });

  it('is still a ReadResponse for the generated serializer, and only Read gets the pass-through serializer', () => {
    const chunk = randomBytes(1000);
    const encoded = ByteStreamService.read.responseSerialize(frameReadResponse(chunk));
    assert.deepEqual(Buffer.from(ReadResponse.decode(encoded).data), chunk);
    assert.equal(FramedByteStreamService.write, ByteStreamService.write);
    assert.equal(FramedByteStreamService.read.path, ByteStreamService.read.path);
  });
  it('writes the header into the room a store left before a chunk, and never pools that buffer', async () => {
    for (const size of [1, 127, 128, 16_384, READ_CHUNK_BYTES]) {
      const chunk = allocateWithHeadroom(size);
      randomBytes(size).copy(chunk);
      const expected = Buffer.from(chunk);
      const framedChunk = frameReadResponse(chunk);
      const encoded = serializeReadResponse(framedChunk);
      assert.equal(encoded.buffer, chunk.buffer, `${size} bytes: the chunk's own memory, not a copy`);
      assert.deepEqual(Buffer.from(encoded), Buffer.from(ReadResponse.encode({ data: expected }).finish()));
      await Promise.resolve();
      // Another consumer (a cache being filled) may still hold the chunk: a later response must not reuse it.
      const later = frameReadResponse(randomBytes(READ_CHUNK_BYTES));
      assert.notEqual(later.data.buffer, chunk.buffer);
      assert.deepEqual(chunk, expected);
    }
    const short = truncateWithHeadroom(allocateWithHeadroom(100), 10);
    short.fill(7);
    assert.equal(serializeReadResponse(frameReadResponse(short)).buffer, short.buffer);
  });

  it('frames a chunk lent from READ_CHUNK_POOL in place and gives it back only once it was serialized', async () => {
    const chunk = READ_CHUNK_POOL.take(READ_CHUNK_BYTES);
    randomBytes(READ_CHUNK_BYTES).copy(chunk);
    const expected = Buffer.from(chunk);
    const framedChunk = frameReadResponse(chunk);
    await Promise.resolve();
    assert.equal(READ_CHUNK_POOL.lent(chunk), true, 'not given back before grpc-js copied it');
    const encoded = serializeReadResponse(framedChunk);
    assert.equal(encoded.buffer, chunk.buffer, "the pool's own memory, not a copy");
    const copied = Buffer.from(encoded); // what grpc-js does at once
    assert.deepEqual(Buffer.from(ReadResponse.decode(copied).data), expected);
    await Promise.resolve();
    assert.equal(READ_CHUNK_POOL.lent(chunk), false, 'given back after the copy');
  });

  it('copies a chunk that is a view into a larger buffer, leaving the bytes before it alone', () => {
    const blob = randomBytes(2000);
    const before = Buffer.from(blob);
    const encoded = Buffer.from(serializeReadResponse(frameReadResponse(blob.subarray(1000))));
    assert.deepEqual(blob, before);
    assert.deepEqual(Buffer.from(ReadResponse.decode(encoded).data), blob.subarray(1000));
  });
});
