import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import { type Digest, digestOf } from '../digest/digest.js';
import { type BatchItem, type BlobStore, getBuffer } from '../storage/blobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { uploadMissing } from './upload.js';

/** A store with putBatch that counts FindMissingBlobs calls and batched blobs, as a remote CAS would see them. */
class BatchingStore extends MemoryBlobStore {
  findMissingCalls = 0;
  batched = 0;
  override findMissing(context: RequestContext, digests: readonly Digest[]): Promise<Digest[]> {
    this.findMissingCalls++;
    return super.findMissing(context, digests);
  }
  async putBatch(context: RequestContext, items: readonly BatchItem[]): Promise<void> {
    this.batched += items.length;
    for (const item of items) {
      const writer = await this.put(context, item.digest);
      await writer.write(item.data);
      await writer.commit();
    }
  }
}

const item = (text: string) => ({ digest: digestOf(text), data: Buffer.from(text) });

describe('uploadMissing', () => {
  test('asks FindMissingBlobs first and sends only what is missing, by default', async () => {
    const store = new BatchingStore();
    await uploadMissing(backgroundContext(), store, [item('one')]);
    const sent = await uploadMissing(backgroundContext(), store, [item('one'), item('two')]);
    assert.equal(sent, 1);
    assert.equal(store.findMissingCalls, 2);
    assert.equal(store.batched, 2);
  });

  test('sends small blobs in one batch without asking, under skipFindMissingBelowBytes', async () => {
    const store = new BatchingStore();
    const sent = await uploadMissing(backgroundContext(), store, [item('one'), item('two')], {
      skipFindMissingBelowBytes: 1024,
    });
    assert.equal(sent, 2);
    assert.equal(store.findMissingCalls, 0);
    assert.equal((await getBuffer(backgroundContext(), store, digestOf('two')))?.toString(), 'two');
  });

  test('still asks when the blobs together exceed skipFindMissingBelowBytes', async () => {
    const store: BlobStore & { findMissingCalls: number } = new BatchingStore();
    await uploadMissing(backgroundContext(), store, [item('x'.repeat(600)), item('y'.repeat(600))], {
      skipFindMissingBelowBytes: 1000,
    });
    assert.equal(store.findMissingCalls, 1);
  });
});
