import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blobStoreContract, testBlob } from '../../test/support/blobStoreContract.js';
import { backgroundContext } from '../context/requestContext.js';
import { getBuffer, putBuffer } from './blobStore.js';
import { MemoryBlobStore } from './memoryBlobStore.js';
import { MirroredBlobStore } from './mirroredBlobStore.js';

const context = backgroundContext();

blobStoreContract('MirroredBlobStore over two memory stores', async () => ({
  store: new MirroredBlobStore([new MemoryBlobStore(), new MemoryBlobStore()]),
  cleanup: async () => {},
}));

describe('MirroredBlobStore', () => {
  it('writes every blob to every mirror and still reads it when one mirror lost it', async () => {
    const [first, second] = [new MemoryBlobStore(), new MemoryBlobStore()];
    const mirrored = new MirroredBlobStore([first, second]);
    const { digest, data } = testBlob(200, 1);
    await putBuffer(context, mirrored, digest, data);
    assert.deepEqual(await first.findMissing(context, [digest]), []);
    assert.deepEqual(await second.findMissing(context, [digest]), []);
    const onlySecond = testBlob(100, 2);
    await putBuffer(context, second, onlySecond.digest, onlySecond.data);
    assert.ok((await getBuffer(context, mirrored, onlySecond.digest))?.equals(onlySecond.data));
  });

  it('repairs a mirror that lacks a blob when its existence is checked, and reports missing only what none has', async () => {
    const [first, second] = [new MemoryBlobStore(), new MemoryBlobStore()];
    const mirrored = new MirroredBlobStore([first, second]);
    const held = testBlob(300, 3);
    const lost = testBlob(300, 4);
    await putBuffer(context, second, held.digest, held.data);
    assert.deepEqual(await mirrored.findMissing(context, [held.digest, lost.digest]), [lost.digest]);
    assert.ok((await getBuffer(context, first, held.digest))?.equals(held.data));
  });

  it('is as big as its smallest mirror', async () => {
    const mirrored = new MirroredBlobStore([new MemoryBlobStore(1000), new MemoryBlobStore(400)]);
    assert.equal(mirrored.usage?.(context).maximumBytes, 400);
  });
});
