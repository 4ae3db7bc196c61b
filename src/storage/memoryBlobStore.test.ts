import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blobStoreContract, testBlob } from '../../test/support/blobStoreContract.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { backgroundContext } from '../context/requestContext.js';
import { Code } from '../util/status.js';
import { putBuffer } from './blobStore.js';
import { MemoryBlobStore } from './memoryBlobStore.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

blobStoreContract('MemoryBlobStore', async () => ({
  store: new MemoryBlobStore(),
  cleanup: async () => {},
}));

describe('MemoryBlobStore', () => {
  it('evicts the least recently used blob when the size limit is reached', async () => {
    const store = new MemoryBlobStore(300);
    const [a, b, c, d] = [1, 2, 3, 4].map((seed) => testBlob(100, seed));
    for (const blob of [a, b, c]) await putBuffer(context, store, blob.digest, blob.data);
    await store.get(context, a.digest);
    await putBuffer(context, store, d.digest, d.data);
    assert.deepEqual(await store.findMissing(context, [a.digest, b.digest, c.digest, d.digest]), [b.digest]);
  });

  it('fails with RESOURCE_EXHAUSTED when every stored blob is retained', async () => {
    let now = 1_000;
    const store = new MemoryBlobStore(200, () => now);
    const a = testBlob(100, 1);
    const b = testBlob(100, 2);
    const c = testBlob(100, 3);
    await putBuffer(context, store, a.digest, a.data);
    await putBuffer(context, store, b.digest, b.data);
    await store.findMissing(context, [a.digest, b.digest], { retainUntilMs: 2_000 });
    await rejectsWithCode(putBuffer(context, store, c.digest, c.data), Code.RESOURCE_EXHAUSTED);
    assert.deepEqual(await store.findMissing(context, [a.digest, b.digest, c.digest]), [c.digest]);
    now = 2_001;
    await putBuffer(context, store, c.digest, c.data);
    assert.deepEqual(await store.findMissing(context, [a.digest, b.digest, c.digest]), [a.digest]);
  });

  it('accepts a second write of a stored blob that fills more than half the limit', async () => {
    const store = new MemoryBlobStore(100);
    const a = testBlob(60, 1);
    await putBuffer(context, store, a.digest, a.data);
    await putBuffer(context, store, a.digest, a.data);
    assert.deepEqual(await store.findMissing(context, [a.digest]), []);
  });

  it("does not keep a reference to the caller's buffers after commit", async () => {
    const store = new MemoryBlobStore();
    const { data, digest } = testBlob(100, 5);
    const copy = Buffer.from(data);
    await putBuffer(context, store, digest, copy);
    copy.fill(0);
    const blob = await store.get(context, digest);
    assert.ok(blob);
    const chunks: Buffer[] = [];
    for await (const chunk of blob.read()) chunks.push(chunk);
    assert.ok(Buffer.concat(chunks).equals(data));
  });

  it('reports its own usage: bytes held, its bound and how many blobs', async () => {
    const store = new MemoryBlobStore(1000);
    assert.deepEqual(store.usage(context), { usedBytes: 0, maximumBytes: 1000, blobCount: 0 });
    for (const seed of [1, 2]) {
      const blob = testBlob(100 * seed, seed);
      await putBuffer(context, store, blob.digest, blob.data);
    }
    assert.deepEqual(store.usage(context), { usedBytes: 300, maximumBytes: 1000, blobCount: 2 });
  });
});
