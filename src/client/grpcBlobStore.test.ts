import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../../test/support/grpc.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { backgroundContext } from '../context/requestContext.js';
import { digestOf } from '../digest/digest.js';
import { putBuffer, readAll } from '../storage/blobStore.js';
import { Code } from '../util/status.js';
import { GrpcBlobStore } from './grpcBlobStore.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
});

describe('GrpcBlobStore', () => {
  it('uploads and reads back small and large blobs', async () => {
    const store = new GrpcBlobStore(t.client);
    const small = randomBytes(1000);
    const large = randomBytes(3 * 1024 * 1024 + 5);
    for (const data of [small, large]) {
      const digest = digestOf(data);
      await putBuffer(context, store, digest, data);
      const blob = await store.get(context, digest);
      assert.ok(blob);
      assert.ok((await readAll(blob)).equals(data));
    }
    assert.equal(await store.get(context, digestOf('absent')), undefined);
    assert.equal(await store.get(context, digestOf(randomBytes(1024 * 1024))), undefined);
  });

  it('finishes a streamed upload of a blob the server already holds, though the server ends the call early', async () => {
    const store = new GrpcBlobStore(t.client);
    const data = randomBytes(48 * 1024 * 1024);
    const digest = digestOf(data);
    await putBuffer(context, store, digest, data);
    await putBuffer(context, store, digest, data);
    assert.deepEqual(await store.findMissing(context, [digest]), []);
  });

  it('makes nothing visible on the server when a streamed upload is aborted', async () => {
    const store = new GrpcBlobStore(t.client);
    const data = randomBytes(3 * 1024 * 1024);
    const digest = digestOf(data);
    const writer = await store.put(context, digest);
    await writer.write(data.subarray(0, 2 * 1024 * 1024));
    await writer.abort();
    assert.deepEqual(await store.findMissing(context, [digest]), [digest]);
  });

  it('writes several small blobs with one putBatch call', async () => {
    const store = new GrpcBlobStore(t.client);
    const items = [randomBytes(10), randomBytes(2000)].map((data) => ({ digest: digestOf(data), data }));
    await store.putBatch(context, items);
    assert.deepEqual(
      await store.findMissing(
        context,
        items.map((i) => i.digest),
      ),
      [],
    );
  });

  it("cancels its calls when the caller's context aborts", async () => {
    const store = new GrpcBlobStore(t.client);
    const data = randomBytes(4 * 1024 * 1024);
    const digest = digestOf(data);
    await putBuffer(context, store, digest, data);
    const controller = new AbortController();
    const cancellable = { ...context, signal: controller.signal };
    const blob = await store.get(cancellable, digest);
    assert.ok(blob);
    const reading = (async () => {
      for await (const _chunk of blob.read()) controller.abort();
    })();
    await rejectsWithCode(reading, Code.CANCELLED);
    await rejectsWithCode(store.findMissing(cancellable, [digest]), Code.CANCELLED);
  });
});
