import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dir, file, newCas, putBlob, uploadTree } from '../../test/support/worker.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestKey, digestOf } from '../digest/digest.js';
import { Action, Command } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { BlobStore } from '../storage/blobStore.js';
import { collectLeaseBlobs, DEFAULT_LEASE_BLOB_LIMITS } from './leaseBlobs.js';

const context = backgroundContext();

async function actionWith(cas: BlobStore, inputRootDigest: Digest): Promise<Action> {
  const commandDigest = await putBlob(
    cas,
    Buffer.from(Command.encode(Command.fromPartial({ arguments: ['true'] })).finish()),
  );
  return Action.fromPartial({ commandDigest, inputRootDigest });
}

const keysOf = (blobs: { digest?: Digest }[]) => new Set(blobs.map((b) => digestKey(b.digest as Digest)));

describe('collectLeaseBlobs', () => {
  test('sends the Command, every Directory and the small files of a small tree, each with its own bytes', async () => {
    const cas = newCas();
    const root = await uploadTree(cas, { 'a.txt': file('alpha'), sub: dir({ 'b.txt': file('beta') }) });
    const action = await actionWith(cas, root);
    const blobs = await collectLeaseBlobs(context, cas, action);
    const keys = keysOf(blobs);
    assert.ok(keys.has(digestKey(action.commandDigest as Digest)), 'the Command');
    assert.ok(keys.has(digestKey(root)), 'the root Directory');
    assert.ok(keys.has(digestKey(digestOf('alpha'))) && keys.has(digestKey(digestOf('beta'))), 'both files');
    assert.equal(blobs.length, 5, 'Command, two Directories, two files, none twice');
    for (const blob of blobs) assert.deepEqual(digestOf(blob.data), blob.digest);
  });

  test('leaves the files out of a tree with more files than the limit, and large files always', async () => {
    const cas = newCas();
    const many: Record<string, ReturnType<typeof file>> = {};
    for (let i = 0; i <= DEFAULT_LEASE_BLOB_LIMITS.maximumFiles; i++) many[`f${i}`] = file(`file ${i}`);
    const manyBlobs = await collectLeaseBlobs(context, cas, await actionWith(cas, await uploadTree(cas, many)));
    assert.equal(manyBlobs.length, 2, 'only the Command and the root Directory');

    const big = Buffer.alloc(DEFAULT_LEASE_BLOB_LIMITS.maximumFileBytes + 1, 7);
    const bigBlobs = await collectLeaseBlobs(
      context,
      cas,
      await actionWith(cas, await uploadTree(cas, { big: file(big) })),
    );
    assert.ok(!keysOf(bigBlobs).has(digestKey(digestOf(big))));
  });

  test('stays within its byte budget and skips what the CAS lacks', async () => {
    const cas = newCas();
    const root = await uploadTree(
      cas,
      { a: file('a'.repeat(3000)), b: file('b'.repeat(3000)) },
      new Set(['b'.repeat(3000)]),
    );
    const action = await actionWith(cas, root);
    const limits = { ...DEFAULT_LEASE_BLOB_LIMITS, maximumBytes: 4000 };
    const blobs = await collectLeaseBlobs(context, cas, action, limits);
    assert.ok(blobs.reduce((sum, b) => sum + b.data.length, 0) <= 4000);
    assert.ok(!keysOf(blobs).has(digestKey(digestOf('b'.repeat(3000)))), 'absent from the CAS');
    assert.ok(keysOf(blobs).has(digestKey(root)));
  });
});
