import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CountingBlobStore, newHarness, putBlob } from '../../test/support/worker.js';
import { backgroundContext } from '../context/requestContext.js';
import { digestOf } from '../digest/digest.js';
import { putBuffer } from '../storage/blobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { Code, StatusError } from '../util/status.js';
import { LocalCache } from './localCache.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

describe('LocalCache', () => {
  test('fetches only blobs that are not cached locally yet', async () => {
    const h = await newHarness();
    try {
      const a = await putBlob(h.cas, 'alpha');
      const b = await putBlob(h.cas, 'beta');
      const remote = new CountingBlobStore(h.cas);
      assert.deepEqual(await h.cache.fetchMissing(context, remote, [{ digest: a, executable: false }]), []);
      assert.equal(remote.gets, 1);
      const missing = await h.cache.fetchMissing(context, remote, [
        { digest: a, executable: false },
        { digest: b, executable: false },
        { digest: b, executable: false },
      ]);
      assert.deepEqual(missing, []);
      assert.equal(remote.gets, 2);
    } finally {
      await h.close();
    }
  });

  test('keeps executable and plain copies as separate files with modes 0555 and 0444', async () => {
    const h = await newHarness();
    try {
      const digest = await putBlob(h.cas, '#!/bin/sh\n');
      const remote = new CountingBlobStore(h.cas);
      const plain = await h.cache.pathOf(context, remote, digest, false);
      const executable = await h.cache.pathOf(context, remote, digest, true);
      assert.notEqual(plain, executable);
      assert.equal((await stat(plain)).mode & 0o7777, 0o444);
      assert.equal((await stat(executable)).mode & 0o7777, 0o555);
      assert.notEqual((await stat(plain)).ino, (await stat(executable)).ino);
      assert.equal(remote.gets, 1, 'the second variant is copied locally');
    } finally {
      await h.close();
    }
  });

  test('reports blobs the remote lacks and installs nothing for them', async () => {
    const h = await newHarness();
    try {
      const absent = digestOf('not uploaded');
      assert.deepEqual(await h.cache.fetchMissing(context, h.cas, [{ digest: absent, executable: true }]), [absent]);
      assert.equal(h.cache.localPath(context, absent, true), undefined);
      await assert.rejects(h.cache.pathOf(context, h.cas, absent, false), (e: unknown) => {
        assert.ok(e instanceof StatusError);
        assert.equal(e.code, Code.FAILED_PRECONDITION);
        assert.deepEqual(e.details.preconditionFailure?.[0]?.subject, `blobs/${absent.hash}/${absent.sizeBytes}`);
        return true;
      });
    } finally {
      await h.close();
    }
  });

  test('refuses content from the remote that does not match its digest', async () => {
    const unverified = new MemoryBlobStore();
    const digest = digestOf('the real content');
    await putBuffer(context, unverified, digest, Buffer.from('something else'));
    const h = await newHarness(unverified);
    try {
      await assert.rejects(
        h.cache.pathOf(context, unverified, digest, false),
        (e: unknown) => e instanceof StatusError && e.code === Code.DATA_LOSS,
      );
      assert.equal(h.cache.localPath(context, digest, false), undefined);
    } finally {
      await h.close();
    }
  });

  test('reads a message from the remote once, then from memory; a message not matching its digest is DATA_LOSS', async () => {
    const unverified = new MemoryBlobStore();
    const good = digestOf('a Directory message');
    await putBuffer(context, unverified, good, Buffer.from('a Directory message'));
    const bad = digestOf('the real message');
    await putBuffer(context, unverified, bad, Buffer.from('something else!!'));
    const h = await newHarness(unverified);
    try {
      const remote = new CountingBlobStore(unverified);
      assert.equal((await h.cache.getBuffer(context, remote, good))?.toString(), 'a Directory message');
      assert.equal((await h.cache.getBuffer(context, remote, good))?.toString(), 'a Directory message');
      assert.equal(remote.gets, 1, 'the second read came from memory');
      await assert.rejects(
        h.cache.getBuffer(context, remote, bad),
        (e: unknown) => e instanceof StatusError && e.code === Code.DATA_LOSS,
      );
      assert.equal(await h.cache.getBuffer(context, remote, digestOf('absent')), undefined);
    } finally {
      await h.close();
    }
  });

  test('evicting a blob removes its local file', async () => {
    const h = await newHarness();
    try {
      const digest = await putBlob(h.cas, 'evict me');
      const path = await h.cache.pathOf(context, h.cas, digest, false);
      await h.cache.evict(digest, false);
      assert.equal(h.cache.localPath(context, digest, false), undefined);
      await assert.rejects(stat(path));
    } finally {
      await h.close();
    }
  });

  test('stays within its size limit by evicting least recently used blobs', async () => {
    const h = await newHarness();
    const cache = await LocalCache.open({ directory: join(h.directory, 'small'), maximumSizeBytes: 2000 });
    try {
      const blobs = await Promise.all([1, 2, 3].map((i) => putBlob(h.cas, Buffer.alloc(600, i))));
      for (const digest of blobs) await cache.pathOf(context, h.cas, digest, false);
      assert.ok(cache.usedBytes <= 1000, `used ${cache.usedBytes}`);
      assert.equal(cache.localPath(context, blobs[0]!, false), undefined);
      assert.ok(cache.localPath(context, blobs[2]!, false));
    } finally {
      await cache.close();
      await h.close();
    }
  });
});
