import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestOf, SHA256 } from '../digest/digest.js';
import { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, putBuffer } from '../storage/blobStore.js';
import { DiskBlobStore } from '../storage/diskBlobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { type AssetKey, type AssetRecord, AssetStore, assetRecords } from './assetStore.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

const scratch: string[] = [];
after(async () => {
  for (const directory of scratch) await rm(directory, { recursive: true, force: true });
});

async function put(store: BlobStore, data: Buffer | string): Promise<Digest> {
  const bytes = Buffer.from(data);
  const digest = digestOf(bytes);
  await putBuffer(context, store, digest, bytes);
  return digest;
}

/** Stores a tree root/{a.txt, sub/b.txt}; returns the digests. */
async function putTree(store: BlobStore, salt: string) {
  const a = await put(store, `a ${salt}`);
  const b = await put(store, `b ${salt}`);
  const sub = await put(
    store,
    Buffer.from(Directory.encode(Directory.fromPartial({ files: [{ name: 'b.txt', digest: b }] })).finish()),
  );
  const root = await put(
    store,
    Buffer.from(
      Directory.encode(
        Directory.fromPartial({ files: [{ name: 'a.txt', digest: a }], directories: [{ name: 'sub', digest: sub }] }),
      ).finish(),
    ),
  );
  return { a, b, sub, root };
}

const key = (uri: string, kind: 'blob' | 'directory' = 'blob'): AssetKey => ({
  instanceName: '',
  kind,
  digestFunction: SHA256,
  uri,
  qualifiers: [],
});

function record(uri: string, digest: Digest, extra: Partial<AssetRecord> = {}): AssetRecord {
  return { ...key(uri), digest, referencesBlobs: [], referencesDirectories: [], updatedAtMs: Date.now(), ...extra };
}

describe('AssetStore', () => {
  it('serves a record only while its blob, its trees and its references are all in the CAS', async () => {
    const cas = new MemoryBlobStore();
    const store = new AssetStore(assetRecords(new MemoryBlobStore()), cas);
    const tree = await putTree(cas, 'complete');
    const extra = await put(cas, 'referenced');
    await store.write(context, record('urn:tree', tree.root, { kind: 'directory', referencesBlobs: [extra] }));
    assert.ok(await store.lookup(context, [key('urn:tree', 'directory')]));
    // Kinds are separate namespaces.
    assert.equal(await store.lookup(context, [key('urn:tree', 'blob')]), undefined);

    // A tree whose nested file is not in the CAS is a miss.
    const elsewhere = new MemoryBlobStore();
    const incomplete = await putTree(elsewhere, 'incomplete');
    for (const d of [incomplete.a, incomplete.sub, incomplete.root]) {
      const blob = await elsewhere.get(context, d);
      assert.ok(blob);
      for await (const chunk of blob.read()) await putBuffer(context, cas, d, chunk);
    }
    await store.write(context, record('urn:incomplete', incomplete.root, { kind: 'directory' }));
    assert.equal(await store.lookup(context, [key('urn:incomplete', 'directory')]), undefined);
    const state0 = await store.checkContent(context, SHA256, [], [incomplete.root], Date.now());
    assert.deepEqual(!state0.complete && state0.missing, [incomplete.b]);
    // So is a record whose referenced blob is gone.
    await store.write(context, record('urn:refs', tree.a, { referencesBlobs: [digestOf('gone')] }));
    assert.equal(await store.lookup(context, [key('urn:refs')]), undefined);

    const state = await store.checkContent(context, SHA256, [await put(cas, 'x')], [tree.root], Date.now());
    assert.deepEqual(state, { complete: true });
    const gone = digestOf('never stored');
    const missing = await store.checkContent(context, SHA256, [gone], [tree.root], Date.now());
    assert.equal(missing.complete, false);
    assert.deepEqual(!missing.complete && missing.missing, [gone]);
  });

  it('ignores expired records and records older than oldest_content_accepted, and prefers the newest', async () => {
    let now = 1_000_000;
    const cas = new MemoryBlobStore();
    const store = new AssetStore(assetRecords(new MemoryBlobStore()), cas, { now: () => now });
    const old = await put(cas, 'old');
    const recent = await put(cas, 'recent');
    await store.write(context, record('urn:a', old, { updatedAtMs: 100 }));
    await store.write(context, record('urn:b', recent, { updatedAtMs: 200 }));
    assert.deepEqual((await store.lookup(context, [key('urn:a'), key('urn:b')]))?.digest, recent);
    assert.deepEqual((await store.lookup(context, [key('urn:a'), key('urn:b')], 150))?.digest, recent);
    assert.equal(await store.lookup(context, [key('urn:a')], 150), undefined);
    await store.write(context, record('urn:c', old, { expireAtMs: now + 10 }));
    assert.ok(await store.lookup(context, [key('urn:c')]));
    now += 10;
    assert.equal(await store.lookup(context, [key('urn:c')]), undefined);
  });

  it('protects the content of a served asset from eviction', async () => {
    const cas = new MemoryBlobStore(1000);
    const store = new AssetStore(assetRecords(new MemoryBlobStore()), cas);
    const kept = await put(cas, Buffer.alloc(400, 1));
    await store.write(context, record('urn:kept', kept));
    assert.ok(await store.lookup(context, [key('urn:kept')]));
    // Two more 400-byte blobs need an eviction; the least recently used one is retained.
    await put(cas, Buffer.alloc(400, 2));
    await put(cas, Buffer.alloc(400, 3));
    assert.deepEqual(await cas.findMissing(context, [kept]), []);
  });

  it('retention lasts min(expire_at, now + retention window)', () => {
    const store = new AssetStore(assetRecords(new MemoryBlobStore()), new MemoryBlobStore(), {
      retentionMs: 1000,
      now: () => 5000,
    });
    assert.equal(store.retainUntil(undefined), 6000);
    assert.equal(store.retainUntil(5500), 5500);
    assert.equal(store.retainUntil(9000), 6000);
  });

  it('re-applies retention to live assets after a restart', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'granary-assets-'));
    scratch.push(directory);
    const records = await DiskBlobStore.open({ directory, maximumSizeBytes: 1024 * 1024 });
    const content = Buffer.alloc(400, 7);
    await new AssetStore(assetRecords(records), new MemoryBlobStore()).write(
      context,
      record('urn:persisted', digestOf(content)),
    );
    await new AssetStore(assetRecords(records), new MemoryBlobStore()).write(
      context,
      record('urn:expired', digestOf('expired'), { expireAtMs: Date.now() - 1 }),
    );
    await records.close();

    // A fresh CAS (as after a restart: same blobs, no retention marks).
    const cas = new MemoryBlobStore(1000);
    const kept = await put(cas, content);
    const reopened = await DiskBlobStore.open({ directory, maximumSizeBytes: 1024 * 1024 });
    try {
      const store = new AssetStore(assetRecords(reopened), cas);
      assert.equal(await store.restoreRetention(context), 1);
      await put(cas, Buffer.alloc(400, 8));
      await put(cas, Buffer.alloc(400, 9));
      assert.deepEqual(await cas.findMissing(context, [kept]), []);
      assert.ok(await store.lookup(context, [key('urn:persisted')]));
    } finally {
      await reopened.close();
    }
  });
});
