import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blobStoreContract, testBlob } from '../../test/support/blobStoreContract.js';
import { backgroundContext } from '../context/requestContext.js';
import { putBuffer, putBuffers } from './blobStore.js';
import { MemoryBlobStore } from './memoryBlobStore.js';
import { ShardingBlobStore } from './shardingBlobStore.js';

const context = backgroundContext();

blobStoreContract('ShardingBlobStore over three memory stores', async () => ({
  store: new ShardingBlobStore(
    [1, 2, 3].map((weight) => ({ id: `shard-${weight}`, weight, store: new MemoryBlobStore() })),
  ),
  cleanup: async () => {},
}));

describe('ShardingBlobStore', () => {
  it('puts each blob in exactly one shard, and every shard gets some', async () => {
    const shards = ['a', 'b', 'c'].map((id) => ({ id, weight: 1, store: new MemoryBlobStore() }));
    const sharded = new ShardingBlobStore(shards);
    const blobs = Array.from({ length: 60 }, (_, seed) => testBlob(10, seed));
    for (const { digest, data } of blobs) await putBuffer(context, sharded, digest, data);
    const digests = blobs.map((blob) => blob.digest);
    let held = 0;
    for (const shard of shards) {
      const count = digests.length - (await shard.store.findMissing(context, digests)).length;
      assert.ok(count > 0, `shard ${shard.id} holds some blobs`);
      held += count;
    }
    assert.equal(held, digests.length);
    assert.deepEqual(await sharded.findMissing(context, digests), []);
  });

  it('places blobs the same way whatever the order of the shards', async () => {
    const [a, b] = [new MemoryBlobStore(), new MemoryBlobStore()];
    const one = new ShardingBlobStore([
      { id: 'a', weight: 1, store: a },
      { id: 'b', weight: 3, store: b },
    ]);
    const other = new ShardingBlobStore([
      { id: 'b', weight: 3, store: b },
      { id: 'a', weight: 1, store: a },
    ]);
    for (let seed = 0; seed < 20; seed++) {
      const { digest } = testBlob(5, seed);
      assert.equal(one.shardOf(digest), other.shardOf(digest));
    }
  });

  it('reports missing digests in the order asked, and writes batches to each shard', async () => {
    const sharded = new ShardingBlobStore(['a', 'b'].map((id) => ({ id, weight: 1, store: new MemoryBlobStore() })));
    const blobs = Array.from({ length: 10 }, (_, seed) => testBlob(8, seed));
    await putBuffers(context, sharded, blobs.slice(0, 5));
    const digests = blobs.map((blob) => blob.digest);
    assert.deepEqual(await sharded.findMissing(context, digests), digests.slice(5));
  });

  it('adds up the usage of its shards and lists every shard', async () => {
    const sharded = new ShardingBlobStore([
      { id: 'a', weight: 1, store: new MemoryBlobStore(1000) },
      { id: 'b', weight: 1, store: new MemoryBlobStore(500) },
    ]);
    const blobs = Array.from({ length: 6 }, (_, seed) => testBlob(10, seed));
    for (const { digest, data } of blobs) await putBuffer(context, sharded, digest, data);
    assert.deepEqual(sharded.usage?.(context), { usedBytes: 60, maximumBytes: 1500, blobCount: 6 });
    assert.equal((await sharded.list?.(context))?.length, 6);
  });
});
