import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blobStoreContract, testBlob } from '../../test/support/blobStoreContract.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { backgroundContext } from '../context/requestContext.js';
import { Code } from '../util/status.js';
import { type BatchItem, getBuffer, putBuffer, putBuffers } from './blobStore.js';
import { MemoryBlobStore } from './memoryBlobStore.js';
import { MetricsBlobStore } from './metricsBlobStore.js';
import { CountingStorageObserver } from './storageObserver.js';
import { VerifyingBlobStore } from './verifyingBlobStore.js';

const context = backgroundContext();

blobStoreContract('MetricsBlobStore over memory', async () => ({
  store: new MetricsBlobStore(new MemoryBlobStore(), 'contract', new CountingStorageObserver()),
  cleanup: async () => {},
}));

describe('MetricsBlobStore', () => {
  it('counts calls, bytes, misses and errors per node and operation', async () => {
    const observer = new CountingStorageObserver();
    const store = new MetricsBlobStore(new VerifyingBlobStore(new MemoryBlobStore()), 'cas', observer);
    const blob = testBlob(1000, 1);
    const absent = testBlob(10, 2);
    await putBuffer(context, store, blob.digest, blob.data);
    await getBuffer(context, store, blob.digest);
    await getBuffer(context, store, absent.digest);
    await store.findMissing(context, [blob.digest, absent.digest]);
    await rejectsWithCode(putBuffer(context, store, absent.digest, Buffer.from('wrong')), Code.INVALID_ARGUMENT);

    const put = observer.counters('cas', 'put');
    assert.deepEqual([put.calls, put.bytes, put.errors], [2, 1005, 1]);
    const get = observer.counters('cas', 'get');
    assert.deepEqual([get.calls, get.bytes, get.misses], [2, 1000, 1]);
    const findMissing = observer.counters('cas', 'findMissing');
    assert.deepEqual([findMissing.calls, findMissing.digests], [1, 2]);
    assert.deepEqual(observer.nodes(), ['cas']);
  });

  it('offers putBatch and usage exactly when the store below does, and observes batches', async () => {
    const observer = new CountingStorageObserver();
    // A store below that takes batches (as a remote one does): VerifyingBlobStore offers them only then.
    const memory = new MemoryBlobStore(500);
    const batching = Object.assign(Object.create(memory) as MemoryBlobStore, {
      putBatch: async (batchContext: typeof context, items: readonly BatchItem[]) => {
        for (const { digest, data } of items) await putBuffer(batchContext, memory, digest, data);
      },
    });
    const store = new MetricsBlobStore(new VerifyingBlobStore(batching), 'batched', observer);
    assert.ok(store.putBatch);
    assert.equal(store.usage?.(context).maximumBytes, 500);
    await putBuffers(context, store, [testBlob(10, 3), testBlob(20, 4)]);
    const batch = observer.counters('batched', 'putBatch');
    assert.deepEqual([batch.calls, batch.digests, batch.bytes], [1, 2, 30]);
    const bare = new MetricsBlobStore(
      {
        findMissing: async () => [],
        get: async () => undefined,
        put: async () => {
          throw new Error('unused');
        },
      },
      'bare',
      observer,
    );
    assert.equal(bare.putBatch, undefined);
    assert.equal(bare.list, undefined);
  });
});
