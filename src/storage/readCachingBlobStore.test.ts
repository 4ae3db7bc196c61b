import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blobStoreContract, testBlob } from '../../test/support/blobStoreContract.js';
import { backgroundContext } from '../context/requestContext.js';
import { getBuffer, putBuffer, readAll } from './blobStore.js';
import { MemoryBlobStore } from './memoryBlobStore.js';
import { ReadCachingBlobStore } from './readCachingBlobStore.js';

const context = backgroundContext();

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
