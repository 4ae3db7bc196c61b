import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestOf } from '../digest/digest.js';
import { Directory, Tree } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, putBuffer } from '../storage/blobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { CompletenessChecker } from './completeness.js';

const context = backgroundContext();

async function put(store: BlobStore, data: Buffer | string): Promise<Digest> {
  const bytes = Buffer.from(data);
  const digest = digestOf(bytes);
  await putBuffer(context, store, digest, bytes);
  return digest;
}

const encodeDirectory = (directory: Directory) => Buffer.from(Directory.encode(directory).finish());

describe('CompletenessChecker', () => {
  it('finds a record complete when its blobs are present, and names the ones that are not', async () => {
    const cas = new MemoryBlobStore();
    const present = await put(cas, 'present');
    const absent = digestOf('absent');
    const checker = new CompletenessChecker(cas);
    assert.deepEqual(await checker.check(context, { blobs: [present, digestOf('')] }), { complete: true });
    assert.deepEqual(await checker.check(context, { blobs: [present, absent] }), {
      complete: false,
      missing: [absent],
    });
  });

  it('follows a Tree message to every file it lists, and misses a Tree message that is gone', async () => {
    const cas = new MemoryBlobStore();
    const file = await put(cas, 'file');
    const lost = digestOf('lost file');
    const tree = await put(
      cas,
      Buffer.from(
        Tree.encode(
          Tree.fromPartial({
            root: { files: [{ name: 'f', digest: file }] },
            children: [{ files: [{ name: 'g', digest: lost }] }],
          }),
        ).finish(),
      ),
    );
    const checker = new CompletenessChecker(cas);
    assert.deepEqual(await checker.check(context, { treeMessages: [tree] }), { complete: false, missing: [lost] });
    await put(cas, 'lost file');
    assert.deepEqual(await checker.check(context, { treeMessages: [tree] }), { complete: true });
    const goneTree = digestOf('no such tree');
    assert.deepEqual(await checker.check(context, { treeMessages: [goneTree] }), {
      complete: false,
      missing: [goneTree],
    });
  });

  it('walks root directories: a missing subdirectory or file makes the record incomplete', async () => {
    const cas = new MemoryBlobStore();
    const a = await put(cas, 'a');
    const subBytes = encodeDirectory(Directory.fromPartial({ files: [{ name: 'b', digest: digestOf('b') }] }));
    const sub = digestOf(subBytes);
    const root = await put(
      cas,
      encodeDirectory(
        Directory.fromPartial({ files: [{ name: 'a', digest: a }], directories: [{ name: 'sub', digest: sub }] }),
      ),
    );
    const checker = new CompletenessChecker(cas);
    assert.deepEqual(await checker.check(context, { directories: [root] }), { complete: false, missing: [sub] });
    await put(cas, subBytes);
    assert.deepEqual(await checker.check(context, { directories: [root] }), {
      complete: false,
      missing: [digestOf('b')],
    });
    await put(cas, 'b');
    assert.deepEqual(await checker.check(context, { directories: [root] }), { complete: true });
  });

  it('reports a directory that does not decode as malformed', async () => {
    const cas = new MemoryBlobStore();
    const notADirectory = await put(cas, Buffer.from([0xff, 0xff, 0xff]));
    const state = await checker(cas).check(context, { directories: [notADirectory] });
    assert.equal(state.complete, false);
    assert.ok(!state.complete && state.malformed);
  });

  it('protects what it finds from eviction until the time given', async () => {
    const cas = new MemoryBlobStore(10);
    const kept = await put(cas, '12345');
    await checker(cas).check(context, { blobs: [kept] }, Date.now() + 60_000);
    const newer = await put(cas, 'abcde');
    // Full: the next blob evicts the least recently used blob that is not retained.
    await put(cas, 'fghij');
    assert.deepEqual(await cas.findMissing(context, [kept, newer]), [newer]);
  });
});

function checker(cas: BlobStore): CompletenessChecker {
  return new CompletenessChecker(cas);
}
