import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CHUNK_HEADROOM_BYTES, ChunkPool, truncateWithHeadroom, wholeBufferOf } from './chunkHeadroom.js';

describe('ChunkPool', () => {
  it('hands out chunks with headroom, and the same memory again only after it was given back', () => {
    const pool = new ChunkPool(1000, 4);
    const first = pool.take(1000);
    const second = pool.take(1000);
    assert.notEqual(first.buffer, second.buffer, 'two lent chunks never share memory');
    const whole = wholeBufferOf(first);
    assert.ok(whole);
    assert.equal(first.byteOffset - whole.byteOffset, CHUNK_HEADROOM_BYTES);
    first.fill(1);
    const third = pool.take(1000);
    assert.notEqual(third.buffer, first.buffer, 'a chunk still lent is not handed out again');
    assert.ok(first.every((byte) => byte === 1));
    pool.give(first);
    const reused = pool.take(10);
    assert.equal(reused.buffer, first.buffer, 'a chunk given back is reused');
    assert.equal(reused.length, 10);
  });

  it('ignores a chunk given back twice, so no two takes share a buffer', () => {
    const pool = new ChunkPool(100, 4);
    const chunk = pool.take(100);
    pool.give(chunk);
    pool.give(chunk);
    const a = pool.take(100);
    const b = pool.take(100);
    assert.notEqual(a.buffer, b.buffer);
  });

  it("ignores chunks it did not lend: another pool's, fresh ones, views inside a chunk", () => {
    const pool = new ChunkPool(100, 4);
    const other = new ChunkPool(100, 4);
    const foreign = other.take(100);
    pool.give(foreign);
    pool.give(Buffer.alloc(100));
    const lent = pool.take(100);
    pool.give(lent.subarray(10));
    assert.equal(pool.lent(lent), true, 'a view that starts later is not the chunk');
    const next = pool.take(100);
    assert.notEqual(next.buffer, foreign.buffer);
    assert.notEqual(next.buffer, lent.buffer);
  });

  it('takes back a chunk shortened by a short read, and gives fresh memory for a chunk larger than its buffers', () => {
    const pool = new ChunkPool(100, 4);
    const short = truncateWithHeadroom(pool.take(100), 40);
    assert.equal(pool.lent(short), true);
    pool.give(short);
    assert.equal(pool.take(100).buffer, short.buffer);
    const large = pool.take(101);
    assert.equal(large.length, 101);
    assert.ok(wholeBufferOf(large), 'still with headroom');
    assert.equal(pool.lent(large), false, 'not one of the pool');
  });

  it('keeps at most maximumFreeBuffers free buffers', () => {
    const pool = new ChunkPool(10, 2);
    const chunks = [pool.take(10), pool.take(10), pool.take(10)];
    for (const chunk of chunks) pool.give(chunk);
    const again = new Set([pool.take(10).buffer, pool.take(10).buffer, pool.take(10).buffer]);
    const reused = chunks.filter((chunk) => again.has(chunk.buffer)).length;
    assert.equal(reused, 2);
  });
});
