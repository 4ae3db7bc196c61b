import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testBlob } from '../../test/support/blobStoreContract.js';
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import { type BatchItem, type BlobStore, ForwardingBlobStore, putBuffer, putBuffers } from './blobStore.js';
import { MemoryBlobStore } from './memoryBlobStore.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

/** A memory store that also records putBatch calls, as a remote store would offer them. */
class BatchingStore extends MemoryBlobStore {
  readonly batches: Digest[][] = [];
  async putBatch(_context: RequestContext, items: readonly BatchItem[]): Promise<void> {
    this.batches.push(items.map((i) => i.digest));
    for (const item of items) await putBuffer(context, this, item.digest, item.data);
  }
}

class PlainDecorator extends ForwardingBlobStore {}

class ListingDecorator extends ForwardingBlobStore {
  override async list(_context: RequestContext): Promise<Digest[]> {
    return [];
  }
}

/** A store with the three operations only. */
function bareStore(): BlobStore {
  const inner = new MemoryBlobStore();
  return {
    findMissing: (context, digests) => inner.findMissing(context, digests),
    get: (context, digest) => inner.get(context, digest),
    put: (context, digest) => inner.put(context, digest),
  };
}

describe('ForwardingBlobStore', () => {
  it('offers each capability of the inner store and passes calls through to it', async () => {
    const inner = new MemoryBlobStore(1000);
    const store = new PlainDecorator(inner);
    const { data, digest } = testBlob(100, 1);
    await putBuffers(context, store, [{ digest, data }]);
    assert.ok(store.list && store.usage);
    assert.deepEqual(await store.list(context), [digest]);
    assert.deepEqual(store.usage(context), { usedBytes: 100, maximumBytes: 1000, blobCount: 1 });
  });

  it('lacks a capability the inner store lacks', () => {
    const store = new PlainDecorator(bareStore());
    assert.equal(store.list, undefined);
    assert.equal(store.localPath, undefined);
    assert.equal(store.putBatch, undefined);
    assert.equal(store.usage, undefined);
  });

  it("keeps a subclass's own capability instead of the inner store's", async () => {
    const inner = new MemoryBlobStore();
    const { data, digest } = testBlob(10, 2);
    await putBuffers(context, inner, [{ digest, data }]);
    assert.deepEqual(await new ListingDecorator(inner).list(context), []);
    assert.ok(new ListingDecorator(bareStore()).list, 'defined by the subclass even over a store without it');
  });
});

describe('putBuffers', () => {
  it('sends all blobs in one batch when the store offers putBatch', async () => {
    const store = new BatchingStore();
    const blobs = [testBlob(10, 3), testBlob(20, 4)];
    await putBuffers(context, new PlainDecorator(store), blobs);
    assert.deepEqual(store.batches, [blobs.map((b) => b.digest)]);
    assert.deepEqual(
      await store.findMissing(
        context,
        blobs.map((b) => b.digest),
      ),
      [],
    );
  });

  it('writes each blob with put when the store has no putBatch', async () => {
    const store = bareStore();
    const blobs = [testBlob(10, 5), testBlob(20, 6)];
    await putBuffers(context, store, blobs);
    assert.deepEqual(
      await store.findMissing(
        context,
        blobs.map((b) => b.digest),
      ),
      [],
    );
  });
});
