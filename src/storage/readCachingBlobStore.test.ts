import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blobStoreContract, testBlob } from '../../test/support/blobStoreContract.js';
import { backgroundContext } from '../context/requestContext.js';
import {
  type Blob,
  ForwardingBlobStore,
  getBuffer,
  putBuffer,
  READ_CHUNK_BYTES,
  type ReadOptions,
  readAll,
} from './blobStore.js';
import { ChunkPool } from './chunkHeadroom.js';
import { MemoryBlobStore } from './memoryBlobStore.js';
import { ReadCachingBlobStore } from './readCachingBlobStore.js';

const context = backgroundContext();

/** Serves its inner store's chunks out of the reader's pool when given one, as the disk store does. */
class PoolingStore extends ForwardingBlobStore {
  pooledReads = 0;
  override async get(...args: Parameters<ForwardingBlobStore['get']>): Promise<Blob | undefined> {
    const blob = await this.inner.get(...args);
    if (!blob) return undefined;
    const counted = () => this.pooledReads++;
    return {
      sizeBytes: blob.sizeBytes,
      read: async function* (offset?: number, limit?: number, options?: ReadOptions) {
        const pool = options?.chunkPool;
        if (pool) counted();
        for await (const chunk of blob.read(offset, limit)) {
          if (!pool) yield chunk;
          else {
            const lent = pool.take(chunk.length);
            chunk.copy(lent);
            yield lent;
          }
        }
      },
    };
  }
}

blobStoreContract('ReadCachingBlobStore (memory in front of memory)', async () => ({
  store: new ReadCachingBlobStore(new MemoryBlobStore(), new MemoryBlobStore()),
  cleanup: async () => {},
}));

describe('ReadCachingBlobStore', () => {
  it('fills the fast store with a blob read whole from the slow one, and serves it from there next', async () => {
    const fast = new MemoryBlobStore();
    const slow = new MemoryBlobStore();
    const cached = new ReadCachingBlobStore(fast, slow);
    const { digest, data } = testBlob(3 * 1024 * 1024, 1);
    await putBuffer(context, slow, digest, data);
    assert.deepEqual(await fast.findMissing(context, [digest]), [digest]);
    assert.ok((await getBuffer(context, cached, digest))?.equals(data));
    assert.deepEqual(await fast.findMissing(context, [digest]), []);
    assert.ok((await getBuffer(context, fast, digest))?.equals(data));
  });

  it("keeps the reader's chunk pool away from the slow store while filling, so chunks given back cannot corrupt the fill", async () => {
    const fast = new MemoryBlobStore();
    const slow = new PoolingStore(new MemoryBlobStore());
    const cached = new ReadCachingBlobStore(fast, slow);
    const { digest, data } = testBlob(3 * 1024 * 1024 + 5, 3);
    await putBuffer(context, slow, digest, data);
    const pool = new ChunkPool(READ_CHUNK_BYTES, 4);
    const blob = await cached.get(context, digest);
    assert.ok(blob);
    for await (const chunk of blob.read(0, undefined, { chunkPool: pool })) {
      pool.give(chunk);
      pool.take(READ_CHUNK_BYTES).fill(0xee); // another reader reuses whatever was given back
    }
    assert.equal(slow.pooledReads, 0, 'the fill read without the pool');
    assert.ok((await getBuffer(context, fast, digest))?.equals(data), 'the fast store holds the right bytes');
    // A partial read keeps no chunk, so the pool goes through.
    for await (const chunk of blob.read(1, READ_CHUNK_BYTES + 1, { chunkPool: pool })) pool.give(chunk);
    assert.equal(slow.pooledReads, 1);
  });

  it('does not fill the fast store from a partial read', async () => {
    const fast = new MemoryBlobStore();
    const slow = new MemoryBlobStore();
    const { digest, data } = testBlob(1000, 2);
    await putBuffer(context, slow, digest, data);
    const blob = await new ReadCachingBlobStore(fast, slow).get(context, digest);
    assert.ok((await readAll({ sizeBytes: 10, read: () => blob!.read(10, 10) })).equals(data.subarray(10, 20)));
    assert.deepEqual(await fast.findMissing(context, [digest]), [digest]);
  });

  it('writes to the slow store only and answers existence from it', async () => {
    const fast = new MemoryBlobStore();
    const slow = new MemoryBlobStore();
    const cached = new ReadCachingBlobStore(fast, slow);
    const { digest, data } = testBlob(100, 3);
    await putBuffer(context, cached, digest, data);
    assert.deepEqual(await fast.findMissing(context, [digest]), [digest]);
    assert.deepEqual(await slow.findMissing(context, [digest]), []);
    // A blob only the fast store still holds (the slow one lost it) is reported missing.
    const stale = testBlob(50, 4);
    await putBuffer(context, fast, stale.digest, stale.data);
    assert.deepEqual(await cached.findMissing(context, [stale.digest]), [stale.digest]);
  });
});
