import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import { type Digest, digestOf } from '../digest/digest.js';
import { type BlobWriter, ForwardingBlobStore } from '../storage/blobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { VerifyingBlobStore } from '../storage/verifyingBlobStore.js';
import { ByteStreamBlobs } from './byteStream.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

/** Counts writers that were opened and not yet committed or aborted. */
class CountingStore extends ForwardingBlobStore {
  open = 0;
  override async put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    const inner = await super.put(context, digest);
    this.open++;
    let settled = false;
    const settle = () => {
      if (!settled) this.open--;
      settled = true;
    };
    return {
      write: (chunk) => inner.write(chunk),
      commit: async () => {
        await inner.commit();
        settle();
      },
      abort: async () => {
        await inner.abort();
        settle();
      },
    };
  }
}

describe('ByteStreamBlobs', () => {
  it('discards, rather than leaks, a concurrent upload under a name already in use when its call ends early', async () => {
    const store = new CountingStore(new VerifyingBlobStore(new MemoryBlobStore()));
    const blobs = new ByteStreamBlobs(store);
    try {
      const data = Buffer.from('two uploads, one name');
      const digest = digestOf(data);
      const name = `uploads/${randomUUID()}/blobs/${digest.hash}/${digest.sizeBytes}`;
      const first = await blobs.startWrite(context, name, 0);
      const second = await blobs.startWrite(context, name, 0);
      assert.equal(first.kind, 'upload');
      assert.equal(second.kind, 'upload');
      if (first.kind !== 'upload' || second.kind !== 'upload') return;
      await second.upload.write(0, data.subarray(0, 5));
      await blobs.suspend(name, second.upload);
      assert.equal(store.open, 1, 'only the registered upload keeps its writer');
      await first.upload.write(0, data.subarray(0, 7));
      await blobs.suspend(name, first.upload);
      assert.deepEqual(await blobs.queryWriteStatus(context, name), { committedSizeBytes: 7, complete: false });
      const resumed = await blobs.startWrite(context, name, 7);
      assert.equal(resumed.kind, 'upload');
      if (resumed.kind !== 'upload') return;
      await resumed.upload.write(7, data.subarray(7));
      blobs.release(name, resumed.upload);
      assert.equal(await resumed.upload.finish(), data.length);
      assert.equal(store.open, 0);
      assert.deepEqual(await blobs.queryWriteStatus(context, name), {
        committedSizeBytes: data.length,
        complete: true,
      });
    } finally {
      blobs.close();
    }
  });
});
