import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blobStoreContract, testBlob } from '../../test/support/blobStoreContract.js';
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import { type FindMissingOptions, putBuffer } from './blobStore.js';
import { ExistenceCachingBlobStore } from './existenceCachingBlobStore.js';
import { MemoryBlobStore } from './memoryBlobStore.js';

const context = backgroundContext();

blobStoreContract('ExistenceCachingBlobStore over memory', async () => ({
  store: new ExistenceCachingBlobStore(new MemoryBlobStore(), 60_000),
  cleanup: async () => {},
}));

/** A memory store that counts the digests it was asked about. */
class AskedStore extends MemoryBlobStore {
  asked = 0;
  override findMissing(context: RequestContext, digests: readonly Digest[], options?: FindMissingOptions) {
    this.asked += digests.length;
    return super.findMissing(context, digests, options);
  }
}

describe('ExistenceCachingBlobStore', () => {
  it('answers a repeated existence check from memory until the time to live passes', async () => {
    let now = 1_000;
    const inner = new AskedStore();
    const cached = new ExistenceCachingBlobStore(inner, 10_000, 100, () => now);
    const present = testBlob(10, 1);
    const absent = testBlob(10, 2);
    await putBuffer(context, inner, present.digest, present.data);
    assert.deepEqual(await cached.findMissing(context, [present.digest, absent.digest]), [absent.digest]);
    assert.equal(inner.asked, 2);
    assert.deepEqual(await cached.findMissing(context, [present.digest, absent.digest]), [absent.digest]);
    assert.equal(inner.asked, 3, 'only the absent digest is asked about again');
    now += 10_001;
    await cached.findMissing(context, [present.digest]);
    assert.equal(inner.asked, 4, 'the remembered presence expired');
  });

  it('asks again when more retention is wanted than was granted', async () => {
    const now = 1_000;
    const inner = new AskedStore();
    const cached = new ExistenceCachingBlobStore(inner, 10_000, 100, () => now);
    const blob = testBlob(10, 3);
    await putBuffer(context, inner, blob.digest, blob.data);
    await cached.findMissing(context, [blob.digest]);
    await cached.findMissing(context, [blob.digest], { retainUntilMs: now + 60_000 });
    assert.equal(inner.asked, 2);
    await cached.findMissing(context, [blob.digest], { retainUntilMs: now + 65_000 });
    assert.equal(inner.asked, 2, 'within the time to live of the retention granted');
  });

  it('forgets a remembered blob once a read finds it gone', async () => {
    const inner = new MemoryBlobStore(10);
    const cached = new ExistenceCachingBlobStore(inner, 60_000);
    const blob = testBlob(10, 4);
    await putBuffer(context, inner, blob.digest, blob.data);
    assert.deepEqual(await cached.findMissing(context, [blob.digest]), []);
    // Evicted behind the cache's back by a newer blob.
    const newer = testBlob(10, 5);
    await putBuffer(context, inner, newer.digest, newer.data);
    assert.deepEqual(await cached.findMissing(context, [blob.digest]), [], 'still remembered as present');
    assert.equal(await cached.get(context, blob.digest), undefined);
    assert.deepEqual(await cached.findMissing(context, [blob.digest]), [blob.digest]);
  });
});
