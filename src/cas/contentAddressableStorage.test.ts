import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey, digestOf, SHA256 } from '../digest/digest.js';
import { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BatchItem, type Blob, ForwardingBlobStore, putBuffer } from '../storage/blobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { SegmentBlobStore } from '../storage/segmentBlobStore.js';
import { VerifyingBlobStore } from '../storage/verifyingBlobStore.js';
import { Code } from '../util/status.js';
import { ContentAddressableStorage } from './contentAddressableStorage.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

class CountingStore extends ForwardingBlobStore {
  gets = 0;
  override get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    this.gets++;
    return super.get(context, digest);
  }
}

async function storeDirectory(store: MemoryBlobStore, directory: Directory): Promise<Digest> {
  const data = Buffer.from(Directory.encode(directory).finish());
  const digest = digestOf(data);
  await putBuffer(context, store, digest, data);
  return digest;
}

describe('ContentAddressableStorage.treePages', () => {
  it('walks the tree once however many pages it streams, each directory exactly once', async () => {
    const memory = new MemoryBlobStore();
    const children: Digest[] = [];
    for (let i = 0; i < 300; i++) {
      children.push(
        await storeDirectory(memory, Directory.fromPartial({ files: [{ name: `f${i}`, digest: digestOf(`f${i}`) }] })),
      );
    }
    const root = await storeDirectory(
      memory,
      Directory.fromPartial({ directories: children.map((digest, i) => ({ name: `d${i}`, digest })) }),
    );
    const counting = new CountingStore(memory);
    const cas = new ContentAddressableStorage(counting, 1024 * 1024);
    const seen: string[] = [];
    let pages = 0;
    let token = 'start';
    for await (const page of cas.treePages(context, root, SHA256, 1, '')) {
      pages++;
      assert.equal(page.directories.length, 1);
      seen.push(digestKey(digestOf(Buffer.from(Directory.encode(page.directories[0] as Directory).finish()))));
      token = page.nextPageToken;
    }
    assert.equal(token, '');
    assert.equal(pages, 301);
    assert.equal(new Set(seen).size, 301);
    assert.equal(counting.gets, 301, 'each directory is loaded once');

    const resumed = await cas.getTreePage(context, root, SHA256, 100, '250');
    assert.equal(resumed.directories.length, 51);
    assert.equal(resumed.nextPageToken, '');
  });
});

/** A memory store that takes batches, as a remote store does, counting them; it can be made to refuse them. */
class BatchingStore extends ForwardingBlobStore {
  batches = 0;
  refuseBatches = false;
  constructor(readonly memory: MemoryBlobStore) {
    super(memory);
  }
  override putBatch = async (batchContext: RequestContext, items: readonly BatchItem[]): Promise<void> => {
    this.batches++;
    if (this.refuseBatches) throw new Error('batch refused');
    for (const { digest, data } of items) await putBuffer(batchContext, this.memory, digest, data);
  };
}

describe('ContentAddressableStorage.batchUpdate', () => {
  const blobs = ['one', 'two', 'three'].map((text) => ({ data: Buffer.from(text), digest: digestOf(text) }));
  const wrongLength = { data: Buffer.from('four'), digest: { ...digestOf('four'), sizeBytes: 9 } };

  it('sends the plain blobs of a request to a store that takes batches in one batch, and answers the others each', async () => {
    const store = new BatchingStore(new MemoryBlobStore());
    const cas = new ContentAddressableStorage(store, 1024 * 1024);
    const results = await cas.batchUpdate(context, [...blobs, wrongLength], SHA256);
    assert.equal(store.batches, 1);
    assert.deepEqual(
      results.map((result) => result.error?.code),
      [undefined, undefined, undefined, Code.INVALID_ARGUMENT],
    );
    assert.deepEqual(
      await store.memory.findMissing(
        context,
        blobs.map((blob) => blob.digest),
      ),
      [],
    );
  });

  it('over the segment store, stores a batch together and answers a blob that does not match its digest on its own', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'granary-cas-batch-test-'));
    try {
      const segments = await SegmentBlobStore.open({ directory, maximumSizeBytes: 16 * 1024 * 1024 });
      const cas = new ContentAddressableStorage(new VerifyingBlobStore(segments), 1024 * 1024);
      const good = await cas.batchUpdate(context, blobs, SHA256);
      assert.deepEqual(
        good.map((result) => result.error),
        [undefined, undefined, undefined],
      );
      const corrupt = { digest: digestOf(Buffer.from('other bytes')), data: Buffer.from('other byteZ') };
      const fresh = { digest: digestOf(Buffer.from('fresh bytes')), data: Buffer.from('fresh bytes') };
      const mixed = await cas.batchUpdate(context, [fresh, corrupt], SHA256);
      assert.deepEqual(
        mixed.map((result) => result.error?.code),
        [undefined, Code.INVALID_ARGUMENT],
      );
      assert.deepEqual(
        await segments.findMissing(context, [...blobs.map((blob) => blob.digest), fresh.digest, corrupt.digest]),
        [corrupt.digest],
        'the corrupt blob never became visible',
      );
      await segments.close();
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('puts each blob on its own when the batch fails, so that each gets its own answer', async () => {
    const store = new BatchingStore(new MemoryBlobStore());
    store.refuseBatches = true;
    const cas = new ContentAddressableStorage(store, 1024 * 1024);
    const results = await cas.batchUpdate(context, blobs, SHA256);
    assert.deepEqual(
      results.map((result) => result.error),
      [undefined, undefined, undefined],
    );
    assert.deepEqual(
      await store.memory.findMissing(
        context,
        blobs.map((blob) => blob.digest),
      ),
      [],
    );
  });
});
