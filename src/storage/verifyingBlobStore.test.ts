import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blobStoreContract, testData, writeInChunks } from '../../test/support/blobStoreContract.js';
import { rejectsWithCode } from '../../test/support/status.js';
import type { RequestContext } from '../context/requestContext.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, type DigestFunction, digestOf, SHA256, SHA384, SHA512 } from '../digest/digest.js';
import { Code } from '../util/status.js';
import { type BatchItem, getBuffer, putBuffer } from './blobStore.js';
import { MemoryBlobStore } from './memoryBlobStore.js';
import { VerifyingBlobStore } from './verifyingBlobStore.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

blobStoreContract(
  'VerifyingBlobStore over MemoryBlobStore',
  async () => ({
    store: new VerifyingBlobStore(new MemoryBlobStore()),
    cleanup: async () => {},
  }),
  { verifiesContent: true },
);

function stores(): { inner: MemoryBlobStore; store: VerifyingBlobStore } {
  const inner = new MemoryBlobStore();
  return { inner, store: new VerifyingBlobStore(inner) };
}

/** Over a memory store that takes batches, as a remote store does. */
function batchingStores(): { inner: MemoryBlobStore; store: VerifyingBlobStore } {
  const inner = new MemoryBlobStore();
  const batching = Object.assign(Object.create(inner) as MemoryBlobStore, {
    putBatch: async (batchContext: RequestContext, items: readonly BatchItem[]) => {
      for (const { digest, data } of items) await putBuffer(batchContext, inner, digest, data);
    },
  });
  return { inner, store: new VerifyingBlobStore(batching) };
}

describe('VerifyingBlobStore', () => {
  it('commits data that matches its digest', async () => {
    const { inner, store } = stores();
    const data = testData(3 * 1024 * 1024 + 5, 1);
    const digest = digestOf(data);
    const writer = await store.put(context, digest);
    await writeInChunks(writer, data, [100_000, 1024 * 1024]);
    await writer.commit();
    assert.ok((await getBuffer(context, inner, digest))?.equals(data));
  });

  it('fails with INVALID_ARGUMENT and stores nothing when the data hashes differently', async () => {
    const { inner, store } = stores();
    const data = testData(1000, 2);
    const digest = digestOf(data);
    const tampered = Buffer.from(data);
    tampered[500] = (tampered[500] as number) ^ 1;
    await rejectsWithCode(putBuffer(context, store, digest, tampered), Code.INVALID_ARGUMENT);
    assert.deepEqual(await inner.findMissing(context, [digest]), [digest]);
    assert.deepEqual(await store.findMissing(context, [digest]), [digest]);
  });

  it('leaves an existing correct copy in place when a corrupt upload of it fails', async () => {
    const { inner, store } = stores();
    const data = testData(1000, 3);
    const digest = digestOf(data);
    await putBuffer(context, store, digest, data);
    await rejectsWithCode(putBuffer(context, store, digest, Buffer.alloc(1000)), Code.INVALID_ARGUMENT);
    assert.ok((await getBuffer(context, inner, digest))?.equals(data));
  });

  it('fails with INVALID_ARGUMENT and stores nothing when fewer bytes than the digest declares arrive', async () => {
    const { inner, store } = stores();
    const data = testData(1000, 4);
    const digest = digestOf(data);
    await rejectsWithCode(putBuffer(context, store, digest, data.subarray(0, 999)), Code.INVALID_ARGUMENT);
    assert.deepEqual(await inner.findMissing(context, [digest]), [digest]);
  });

  it('fails with INVALID_ARGUMENT and stores nothing when more bytes than the digest declares arrive', async () => {
    const { inner, store } = stores();
    const data = testData(1000, 5);
    const digest = digestOf(data);
    await rejectsWithCode(
      putBuffer(context, store, digest, Buffer.concat([data, Buffer.from('!')])),
      Code.INVALID_ARGUMENT,
    );
    assert.deepEqual(await inner.findMissing(context, [digest]), [digest]);
  });

  it('fails when the hash is right but the declared size is wrong', async () => {
    const { inner, store } = stores();
    const data = testData(1000, 6);
    const digest = { hash: digestOf(data).hash, sizeBytes: 1001 };
    await rejectsWithCode(
      putBuffer(context, store, digest, Buffer.concat([data, Buffer.from('!')])),
      Code.INVALID_ARGUMENT,
    );
    assert.deepEqual(await inner.findMissing(context, [digest]), [digest]);
  });

  for (const fn of [SHA384, SHA512]) {
    it(`verifies a ${fn.name} digest with ${fn.name}`, async () => {
      const { inner, store } = stores();
      const data = testData(2 * 1024 * 1024 + 1, 7);
      const digest = digestOf(data, fn);
      assert.equal(digest.hash.length, fn.hexLength);
      await putBuffer(context, store, digest, data);
      assert.ok((await getBuffer(context, inner, digest))?.equals(data));
    });

    it(`rejects data whose ${fn.name} hash differs from the digest`, async () => {
      const { inner, store } = stores();
      const data = testData(1000, 8);
      const digest = digestOf(testData(1000, 9), fn);
      await rejectsWithCode(putBuffer(context, store, digest, data), Code.INVALID_ARGUMENT);
      assert.deepEqual(await inner.findMissing(context, [digest]), [digest]);
    });
  }

  it('does not accept a SHA-256 hash of the data in a digest of another function length', async () => {
    // A 128-hex-digit hash is a SHA-512 digest: two SHA-256 hashes glued together must not pass.
    const { store } = stores();
    const data = testData(100, 10);
    const sha256 = digestOf(data, SHA256).hash;
    await rejectsWithCode(
      putBuffer(context, store, { hash: sha256 + sha256, sizeBytes: data.length }, data),
      Code.INVALID_ARGUMENT,
    );
  });

  it('uses the digest function chosen by its functionFor parameter', async () => {
    const chosen: Digest[] = [];
    const functionFor = (digest: Digest): DigestFunction => {
      chosen.push(digest);
      return SHA512;
    };
    const inner = new MemoryBlobStore();
    const store = new VerifyingBlobStore(inner, functionFor);
    const data = testData(100, 11);
    const digest = digestOf(data, SHA512);
    await putBuffer(context, store, digest, data);
    assert.deepEqual(chosen, [digest]);
    // SHA-256 digests fail here, because the chosen function is SHA-512.
    const sha256 = digestOf(data, SHA256);
    await rejectsWithCode(putBuffer(context, store, sha256, data), Code.INVALID_ARGUMENT);
  });

  it('offers batches only over a store that takes them itself', () => {
    assert.equal(stores().store.putBatch, undefined);
    assert.equal(typeof batchingStores().store.putBatch, 'function');
  });

  it('stores no blob of a batch in which one blob does not match its digest', async () => {
    const { inner, store } = batchingStores();
    assert.ok(store.putBatch);
    const good = testData(100, 12);
    const bad = testData(100, 13);
    const items = [
      { digest: digestOf(good), data: good },
      { digest: digestOf(testData(100, 14)), data: bad },
    ];
    await rejectsWithCode(store.putBatch(context, items), Code.INVALID_ARGUMENT);
    assert.deepEqual(
      await inner.findMissing(
        context,
        items.map((i) => i.digest),
      ),
      items.map((i) => i.digest),
    );
    await store.putBatch(context, items.slice(0, 1));
    assert.ok((await getBuffer(context, inner, digestOf(good)))?.equals(good));
  });
});
