import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backgroundContext, type RequestContext } from '../../context/requestContext.js';
import { type Digest, digestOf, SHA256 } from '../../digest/digest.js';
import { getBuffer } from '../../storage/blobStore.js';
import { MemoryBlobStore } from '../../storage/memoryBlobStore.js';
import { BlobUploader } from './blobUploader.js';

/** A CAS whose findMissing calls wait until the test releases them, counting them. */
class GatedStore extends MemoryBlobStore {
  started = 0;
  failWith: Error | undefined;
  private releases: Array<() => void> = [];

  override async findMissing(context: RequestContext, digests: readonly Digest[]): Promise<Digest[]> {
    this.started++;
    await new Promise<void>((resolve) => this.releases.push(resolve));
    if (this.failWith) throw this.failWith;
    return super.findMissing(context, digests);
  }

  /** Lets every waiting call go on; resolves once one has been let go. */
  async releaseWhenWaiting(): Promise<void> {
    while (this.releases.length === 0) await new Promise((resolve) => setImmediate(resolve));
    for (const release of this.releases.splice(0)) release();
  }
}

const blob = (text: string) => Buffer.from(text.repeat(10));

describe('BlobUploader', { timeout: 60_000 }, () => {
  test('a full batch uploads while the next one fills, and flush waits for both', async () => {
    const cas = new GatedStore();
    const uploader = new BlobUploader(cas, { batchBytes: 20 });
    // Two blobs fill the first batch; adding them returns although its upload is still blocked.
    await uploader.addBuffer(blob('a'));
    await uploader.addBuffer(blob('b'));
    await uploader.addBuffer(blob('c'));
    const flushed = uploader.flush();
    await cas.releaseWhenWaiting();
    await cas.releaseWhenWaiting();
    await flushed;
    assert.equal(cas.started, 2);
    for (const text of ['a', 'b', 'c']) {
      assert.deepEqual(await getBuffer(backgroundContext(), cas, digestOf(blob(text), SHA256)), blob(text));
    }
    await uploader.dispose();
  });

  test("a second full batch waits for the first one's upload, so at most two batches are held in memory", async () => {
    const cas = new GatedStore();
    const uploader = new BlobUploader(cas, { batchBytes: 10 });
    await uploader.addBuffer(blob('a'));
    let secondAdded = false;
    const second = uploader.addBuffer(blob('b')).then(() => {
      secondAdded = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(secondAdded, false, 'the second full batch must wait for the first upload');
    await cas.releaseWhenWaiting();
    await second;
    await cas.releaseWhenWaiting();
    assert.equal(cas.started, 2);
    await uploader.close();
  });

  test('an upload that fails is reported by the next flush, not lost', async () => {
    const cas = new GatedStore();
    cas.failWith = new Error('CAS unavailable');
    const uploader = new BlobUploader(cas, { batchBytes: 10 });
    await uploader.addBuffer(blob('a'));
    const flushed = uploader.flush();
    await cas.releaseWhenWaiting();
    await assert.rejects(flushed, /CAS unavailable/);
    await uploader.dispose();
  });

  test('dispose waits for the upload in flight before returning', async () => {
    const cas = new GatedStore();
    const uploader = new BlobUploader(cas, { batchBytes: 10 });
    await uploader.addBuffer(blob('a'));
    let disposed = false;
    const disposing = uploader.dispose().then(() => {
      disposed = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(disposed, false);
    await cas.releaseWhenWaiting();
    await disposing;
    assert.equal(disposed, true);
  });
});
