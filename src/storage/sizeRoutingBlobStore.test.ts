import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { blobStoreContract, testBlob } from '../../test/support/blobStoreContract.js';
import { backgroundContext } from '../context/requestContext.js';
import { putBuffer } from './blobStore.js';
import { DiskBlobStore } from './diskBlobStore.js';
import { MemoryBlobStore } from './memoryBlobStore.js';
import { SegmentBlobStore } from './segmentBlobStore.js';
import { SizeRoutingBlobStore } from './sizeRoutingBlobStore.js';

const context = backgroundContext();
const MiB = 1024 * 1024;

/** A store with the three operations and list only. */
function small() {
  const inner = new MemoryBlobStore(MiB);
  return {
    findMissing: inner.findMissing.bind(inner),
    get: inner.get.bind(inner),
    put: inner.put.bind(inner),
    list: inner.list.bind(inner),
  };
}

blobStoreContract('SizeRoutingBlobStore over segments and a disk', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'granary-routing-test-'));
  const small = await SegmentBlobStore.open({ directory: join(directory, 'small'), maximumSizeBytes: 256 * MiB });
  const large = await DiskBlobStore.open({ directory: join(directory, 'large'), maximumSizeBytes: 256 * MiB });
  return {
    store: new SizeRoutingBlobStore(small, large, 64 * 1024),
    cleanup: async () => {
      await small.close();
      await large.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
});

describe('SizeRoutingBlobStore', () => {
  it('sends blobs up to the threshold to the small store and larger ones to the large store', async () => {
    const small = new MemoryBlobStore(MiB);
    const large = new MemoryBlobStore(4 * MiB);
    const store = new SizeRoutingBlobStore(small, large, 1000);
    const [tiny, limit, big] = [testBlob(10, 1), testBlob(1000, 2), testBlob(1001, 3)];
    for (const { digest, data } of [tiny, limit, big]) await putBuffer(context, store, digest, data);
    assert.deepEqual(await small.findMissing(context, [tiny.digest, limit.digest, big.digest]), [big.digest]);
    assert.deepEqual(await large.findMissing(context, [tiny.digest, limit.digest, big.digest]), [
      tiny.digest,
      limit.digest,
    ]);
    const absent = [testBlob(5, 4).digest, testBlob(5000, 5).digest];
    assert.deepEqual(await store.findMissing(context, [tiny.digest, absent[0]!, big.digest, absent[1]!]), absent);
    assert.deepEqual(store.usage?.(context), { usedBytes: 2011, maximumBytes: 5 * MiB, blobCount: 3 });
  });

  it('takes batches when the small store does: small blobs in one batch there, the others put one by one', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'granary-routing-test-'));
    try {
      const segments = await SegmentBlobStore.open({ directory, maximumSizeBytes: 16 * MiB });
      let batches = 0;
      const putBatch = segments.putBatch.bind(segments);
      segments.putBatch = (batchContext, items) => {
        batches++;
        return putBatch(batchContext, items);
      };
      const large = new MemoryBlobStore(4 * MiB);
      const store = new SizeRoutingBlobStore(segments, large, 1000);
      assert.equal(new SizeRoutingBlobStore(small(), large, 1000).putBatch, undefined, 'neither side takes batches');
      const items = [testBlob(10, 1), testBlob(1001, 2), testBlob(1000, 3), testBlob(5000, 4)];
      await store.putBatch?.(context, items);
      assert.equal(batches, 1);
      assert.deepEqual(
        await segments.findMissing(
          context,
          items.map((item) => item.digest),
        ),
        [items[1]!.digest, items[3]!.digest],
      );
      assert.deepEqual(await large.findMissing(context, [items[1]!.digest, items[3]!.digest]), []);
      assert.deepEqual(
        await store.findMissing(
          context,
          items.map((item) => item.digest),
        ),
        [],
      );
      await segments.close();
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('lists what both stores hold, and gives local paths from the store that has them', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'granary-routing-test-'));
    const disk = await DiskBlobStore.open({ directory, maximumSizeBytes: MiB });
    try {
      const store = new SizeRoutingBlobStore(new MemoryBlobStore(MiB), disk, 100);
      const big = testBlob(500, 6);
      const tiny = testBlob(50, 7);
      await putBuffer(context, store, big.digest, big.data);
      await putBuffer(context, store, tiny.digest, tiny.data);
      assert.ok(store.localPath?.(context, big.digest));
      assert.equal(store.localPath?.(context, tiny.digest), undefined);
      assert.deepEqual(await store.list?.(context), [tiny.digest, big.digest]);
      assert.equal(new SizeRoutingBlobStore(small(), { ...small(), list: undefined }, 100).list, undefined);
    } finally {
      await disk.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
