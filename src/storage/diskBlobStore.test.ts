import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { blobStoreContract, testBlob, writeInChunks } from '../../test/support/blobStoreContract.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { assertStoreLocksItsDirectory } from '../../test/support/storeLock.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestKey } from '../digest/digest.js';
import { Code } from '../util/status.js';
import { getBuffer, putBuffer, READ_CHUNK_BYTES } from './blobStore.js';
import { CHUNK_HEADROOM_BYTES, ChunkPool, wholeBufferOf } from './chunkHeadroom.js';
import { DiskBlobStore, diskBlobPath, READ_ONLY_BLOB_MODE } from './diskBlobStore.js';
import { VerifyingBlobStore } from './verifyingBlobStore.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

const MiB = 1024 * 1024;

async function freshDirectory(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'granary-disk-test-'));
}

blobStoreContract('DiskBlobStore', async () => {
  const directory = await freshDirectory();
  const store = await DiskBlobStore.open({
    directory,
    maximumSizeBytes: 1024 * MiB,
  });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
});

describe('DiskBlobStore', () => {
  let directory: string;
  let now: number;
  const opened: DiskBlobStore[] = [];

  /** Opens a store on the test directory; the test's clock is injected. */
  async function open(maximumSizeBytes: number): Promise<DiskBlobStore> {
    const store = await DiskBlobStore.open({
      directory,
      maximumSizeBytes,
      now: () => now,
    });
    opened.push(store);
    return store;
  }

  /** Stores blobs in order, one after another. */
  async function putAll(store: DiskBlobStore, blobs: Array<{ data: Buffer; digest: Digest }>): Promise<void> {
    for (const { data, digest } of blobs) await putBuffer(context, store, digest, data);
  }

  /** Note: findMissing refreshes recency of the blobs it finds. */
  async function missing(store: DiskBlobStore, blobs: Array<{ digest: Digest }>): Promise<Digest[]> {
    return store.findMissing(
      context,
      blobs.map((b) => b.digest),
    );
  }

  async function filesIn(subdirectory: string): Promise<string[]> {
    const entries = await readdir(join(directory, subdirectory), {
      recursive: true,
      withFileTypes: true,
    });
    return entries.filter((e) => e.isFile()).map((e) => e.name);
  }

  const [a, b, c, d, e, f] = [1, 2, 3, 4, 5, 6].map((seed) => testBlob(100, seed));

  beforeEach(async () => {
    directory = await freshDirectory();
    now = 1_000;
    opened.length = 0;
  });

  afterEach(async () => {
    // Stores left open by a simulated crash are closed first so their timers stop.
    for (const store of opened.reverse()) await store.close().catch(() => undefined);
    await rm(directory, { recursive: true, force: true });
  });

  it('is refused while another process has its directory open, and holds the directory until closed', async () => {
    await assertStoreLocksItsDirectory(directory, () => DiskBlobStore.open({ directory, maximumSizeBytes: MiB }));
  });

  describe('eviction', () => {
    it('evicts the oldest blobs first when the total size would exceed the limit', async () => {
      const store = await open(300);
      await putAll(store, [a, b, c, d]);
      assert.equal(store.usedBytes, 300);
      assert.equal(store.blobCount, 3);
      assert.equal(await store.get(context, a.digest), undefined);
      await putAll(store, [e]);
      assert.deepEqual(await missing(store, [a, b, c, d, e]), [a.digest, b.digest]);
      assert.equal((await filesIn('blobs')).length, 3, 'evicted blob files are deleted');
    });

    it('evicts as many old blobs as a large new blob needs', async () => {
      const store = await open(300);
      await putAll(store, [a, b, c]);
      const big = testBlob(250, 7);
      await putBuffer(context, store, big.digest, big.data);
      assert.deepEqual(await missing(store, [a, b, c]), [a.digest, b.digest, c.digest]);
      assert.equal(store.usedBytes, 250);
    });

    it('reports its usage as the bytes and blobs it holds against its bound', async () => {
      const store = await open(300);
      await putAll(store, [a, b, c, d]);
      assert.deepEqual(store.usage(context), { usedBytes: 300, maximumBytes: 300, blobCount: 3 });
    });

    it('keeps a blob that was read recently and evicts the next oldest instead', async () => {
      const store = await open(300);
      await putAll(store, [a, b, c]);
      assert.ok(await store.get(context, a.digest));
      await putAll(store, [d]);
      assert.deepEqual(await missing(store, [b]), [b.digest]);
      assert.ok((await getBuffer(context, store, a.digest))?.equals(a.data));
    });

    it('keeps a blob that findMissing reported present and evicts the next oldest instead', async () => {
      const store = await open(300);
      await putAll(store, [a, b, c]);
      assert.deepEqual(await store.findMissing(context, [a.digest]), []);
      await putAll(store, [d]);
      assert.equal(await store.get(context, b.digest), undefined);
      assert.ok((await getBuffer(context, store, a.digest))?.equals(a.data));
    });

    it('does not evict a blob retained by findMissing until the retention time has passed', async () => {
      const store = await open(300);
      await putAll(store, [a, b, c]);
      await store.findMissing(context, [a.digest], { retainUntilMs: 5_000 });
      await store.findMissing(context, [b.digest, c.digest]);
      await putAll(store, [d]);
      assert.equal(await store.get(context, b.digest), undefined, 'the oldest unretained blob is evicted');
      assert.ok(await store.get(context, a.digest));
      // a is now the most recent by use, so make it the oldest again to show that
      // only the clock, not recency, ends its protection.
      await store.findMissing(context, [c.digest, d.digest]);
      now = 5_001;
      await putAll(store, [e]);
      assert.equal(await store.get(context, a.digest), undefined);
    });

    it('fails a commit with RESOURCE_EXHAUSTED when every stored blob is retained, until retention ends', async () => {
      const store = await open(300);
      await putAll(store, [a, b, c]);
      await store.findMissing(context, [a.digest, b.digest, c.digest], {
        retainUntilMs: 5_000,
      });
      const writer = await store.put(context, d.digest);
      await writer.write(d.data);
      await rejectsWithCode(writer.commit(), Code.RESOURCE_EXHAUSTED);
      await writer.abort();
      assert.deepEqual(await missing(store, [a, b, c, d]), [d.digest]);
      assert.deepEqual(await filesIn('tmp'), [], 'the failed write leaves no temporary file');
      now = 5_000;
      await putAll(store, [d]);
      assert.deepEqual(await missing(store, [a, b, c, d]), [a.digest]);
    });

    it('fails with RESOURCE_EXHAUSTED for a blob larger than the whole limit and stores nothing', async () => {
      const store = await open(2 * MiB);
      await putAll(store, [a]);
      const { data, digest } = testBlob(2 * MiB + 1, 8);
      const writer = await store.put(context, digest);
      await writeInChunks(writer, data, [MiB]);
      await rejectsWithCode(writer.commit(), Code.RESOURCE_EXHAUSTED);
      await writer.abort();
      assert.equal(await store.get(context, digest), undefined);
      assert.ok(await store.get(context, a.digest), 'existing blobs are not evicted for a blob that can never fit');
      assert.deepEqual(await filesIn('tmp'), []);
    });

    it('does not evict other blobs when a stored blob is written again', async () => {
      const store = await open(300);
      await putAll(store, [a, b, c]);
      await putAll(store, [a]);
      assert.deepEqual(await missing(store, [a, b, c]), []);
      assert.equal(store.usedBytes, 300);
    });

    it('accepts a second write of a stored blob that fills more than half the limit', async () => {
      const store = await open(100);
      const big = testBlob(60, 9);
      await putBuffer(context, store, big.digest, big.data);
      await putBuffer(context, store, big.digest, big.data);
      assert.equal(store.usedBytes, 60);
      assert.ok((await getBuffer(context, store, big.digest))?.equals(big.data));
    });

    it('never exceeds the size limit when commits run concurrently', async () => {
      const store = await open(250);
      // The interleaving depends on I/O timing, so try several rounds.
      for (let round = 0; round < 10; round++) {
        const blobs = Array.from({ length: 8 }, (_, i) => testBlob(100, 100 + round * 10 + i));
        await Promise.all(blobs.map(({ data, digest }) => putBuffer(context, store, digest, data)));
        assert.ok(store.usedBytes <= 250, `round ${round}: ${store.usedBytes} bytes used`);
        assert.equal(store.blobCount, 2);
        assert.equal((await filesIn('blobs')).length, 2, 'files on disk match the index');
        assert.deepEqual(await filesIn('tmp'), []);
      }
    });
  });

  describe('temporary files', () => {
    it('removes its temporary files on abort and when a verifying wrapper rejects the data', async () => {
      const store = await open(100 * MiB);
      const verifying = new VerifyingBlobStore(store);
      for (const size of [1000, 2 * MiB]) {
        const { data, digest } = testBlob(size, 30);
        const aborted = await store.put(context, digest);
        await writeInChunks(aborted, data, [MiB / 2]);
        await aborted.abort();
        const short = await verifying.put(context, digest);
        await writeInChunks(short, data.subarray(1), [MiB / 2]);
        await rejectsWithCode(short.commit(), Code.INVALID_ARGUMENT);
        await short.abort();
        const corrupt = await verifying.put(context, digest);
        await writeInChunks(corrupt, testBlob(size, 31).data, [MiB / 2]);
        await rejectsWithCode(corrupt.commit(), Code.INVALID_ARGUMENT);
        await corrupt.abort();
      }
      assert.deepEqual(await filesIn('tmp'), []);
      assert.deepEqual(await filesIn('blobs'), []);
    });
  });

  describe('restart', () => {
    it('keeps every blob and the LRU order across close and reopen', async () => {
      const big = testBlob(2 * MiB, 10);
      let store = await open(2 * MiB + 300);
      await putAll(store, [a, b, c]);
      await putBuffer(context, store, big.digest, big.data);
      await store.get(context, a.digest); // order, oldest first: b, c, big, a
      await store.close();

      store = await open(2 * MiB + 300);
      assert.equal(store.blobCount, 4);
      assert.equal(store.usedBytes, 2 * MiB + 300);
      await putAll(store, [d]);
      assert.equal(await store.get(context, b.digest), undefined, 'b was the least recently used');
      assert.deepEqual(await missing(store, [a, c, d]), []); // order now: big, a, c, d
      await putAll(store, [e]);
      assert.equal(await store.get(context, big.digest), undefined, 'the large blob was next');
      assert.deepEqual(await missing(store, [a, c, d, e]), []);
    });

    it('resolves close() only after the latest index is on disk, even when saves overlap', async () => {
      const store = await open(300);
      await putAll(store, [a, b]);
      const first = store.close(); // saves the order a, b
      await store.findMissing(context, [a.digest]); // order now b, a
      const second = store.close();
      const third = store.close();
      await third;
      // Read synchronously, so that a save still in flight cannot finish meanwhile.
      const saved = readFileSync(join(directory, 'index'), 'utf8');
      assert.deepEqual(
        saved
          .trim()
          .split('\n')
          .map((line) => line.split(' ')[0]),
        [digestKey(b.digest), digestKey(a.digest)],
      );
      await Promise.all([first, second]);
    });

    it('reopens from the saved index and file names without re-reading blob contents', async () => {
      let store = await open(MiB);
      await putAll(store, [a]);
      await store.close();
      // Same size, different bytes: a store that re-hashed or re-read blobs at
      // start-up would notice; this one trusts its index, as designed.
      const path = join(directory, 'blobs', a.digest.hash.slice(0, 2), digestKey(a.digest));
      await writeFile(path, Buffer.alloc(100, 7));
      store = await open(MiB);
      assert.deepEqual(await store.findMissing(context, [a.digest]), []);
      assert.equal((await store.get(context, a.digest))?.sizeBytes, 100);
    });

    it('recovers after a crash: deletes leftover temporary files and finds blobs missing from the saved index', async () => {
      let store = await open(400);
      await putAll(store, [a, b]);
      await store.close(); // saved index: a, b

      store = await open(400);
      await putAll(store, [c, d]); // not in the saved index
      await writeFile(join(directory, 'tmp', 'leftover'), 'partial upload');
      // Crash: no close(), so the index on disk still lists only a and b.

      store = await open(400);
      assert.deepEqual(await filesIn('tmp'), [], 'leftover temporary files are deleted');
      assert.equal(store.blobCount, 4);
      assert.equal(store.usedBytes, 400);
      for (const blob of [a, b, c, d]) assert.ok((await getBuffer(context, store, blob.digest))?.equals(blob.data));
      // Reading refreshed everything; recreate the post-crash order by reopening.
      store = await open(400);
      // Blobs unknown to the saved index count as least recently used.
      await putAll(store, [e, f]);
      assert.deepEqual(await missing(store, [a, b, c, d, e, f]), [c.digest, d.digest]);
    });

    it('never shows a partially written blob, even after a restart', async () => {
      const small = testBlob(1000, 11);
      const large = testBlob(3 * MiB, 12);
      let store = await open(100 * MiB);
      const smallWriter = await store.put(context, small.digest);
      await smallWriter.write(small.data.subarray(0, 500));
      const largeWriter = await store.put(context, large.digest);
      await writeInChunks(largeWriter, large.data.subarray(0, 2 * MiB), [MiB / 2]); // spilled to tmp/
      assert.ok((await filesIn('tmp')).length > 0, 'the large writer has spilled to a temporary file');
      assert.equal((await store.findMissing(context, [small.digest, large.digest])).length, 2);
      assert.equal(await store.get(context, large.digest), undefined);

      // Crash with both writers open, then restart.
      store = await open(100 * MiB);
      assert.equal((await store.findMissing(context, [small.digest, large.digest])).length, 2);
      assert.equal(await store.get(context, small.digest), undefined);
      assert.equal(await store.get(context, large.digest), undefined);
      assert.equal(store.blobCount, 0);
      assert.deepEqual(await filesIn('tmp'), []);
      assert.deepEqual(await filesIn('blobs'), []);
      await smallWriter.abort();
      await largeWriter.abort();
    });
  });

  it('streams a large blob from disk so a concurrent eviction surfaces as NOT_FOUND', async () => {
    const store = await open(3 * MiB);
    const first = testBlob(2 * MiB, 13);
    const second = testBlob(2 * MiB, 14);
    await putBuffer(context, store, first.digest, first.data);
    const blob = await store.get(context, first.digest);
    assert.ok(blob);
    await putBuffer(context, store, second.digest, second.data);
    const reading = (async () => {
      for await (const _chunk of blob.read()) {
        // drain
      }
    })();
    await rejectsWithCode(reading, Code.NOT_FOUND);
  });

  it('reads every chunk into a buffer with headroom for the sender, from any offset and limit', async () => {
    const store = await open(16 * MiB);
    const { data, digest } = testBlob(2 * MiB + 5, 16);
    await putBuffer(context, store, digest, data);
    const blob = await store.get(context, digest);
    assert.ok(blob);
    for (const [offset, limit] of [
      [0, undefined],
      [3, READ_CHUNK_BYTES + 1],
      [2 * MiB, undefined],
    ] as const) {
      const chunks: Buffer[] = [];
      for await (const chunk of blob.read(offset, limit)) {
        const whole = wholeBufferOf(chunk);
        assert.ok(whole, 'the chunk has headroom');
        assert.equal(chunk.byteOffset - whole.byteOffset, CHUNK_HEADROOM_BYTES);
        chunks.push(chunk);
      }
      const end = limit === undefined ? data.length : offset + limit;
      assert.deepEqual(Buffer.concat(chunks), data.subarray(offset, end));
    }
  });

  it("reads into the reader's chunk pool, correctly across chunk boundaries and at any offset and limit", async () => {
    const store = await open(32 * MiB);
    const { data, digest } = testBlob(3 * MiB + 7, 18);
    await putBuffer(context, store, digest, data);
    const blob = await store.get(context, digest);
    assert.ok(blob);
    const pool = new ChunkPool(READ_CHUNK_BYTES, 2);
    for (const [offset, limit] of [
      [0, undefined],
      [1, undefined],
      [READ_CHUNK_BYTES - 1, 2],
      [READ_CHUNK_BYTES, READ_CHUNK_BYTES],
      [5, 2 * READ_CHUNK_BYTES + 3],
      [3 * MiB, 100],
      [3 * MiB + 7, undefined],
    ] as const) {
      const parts: Buffer[] = [];
      for await (const chunk of blob.read(offset, limit, { chunkPool: pool })) {
        assert.ok(pool.lent(chunk), 'the chunk is one of the pool');
        parts.push(Buffer.from(chunk));
        pool.give(chunk);
      }
      const end = limit === undefined ? data.length : offset + limit;
      assert.deepEqual(Buffer.concat(parts), data.subarray(offset, end), `offset ${offset}, limit ${limit}`);
    }
  });

  it('never reuses a pooled chunk the reader has not given back, across concurrent reads of one pool', async () => {
    const store = await open(64 * MiB);
    const blobs = [testBlob(4 * MiB + 3, 19), testBlob(3 * MiB, 20), testBlob(5 * MiB - 1, 21)];
    for (const { data, digest } of blobs) await putBuffer(context, store, digest, data);
    const pool = new ChunkPool(READ_CHUNK_BYTES, 4);
    const kept: { chunk: Buffer; copy: Buffer }[] = [];
    const read = async ({ data, digest }: { data: Buffer; digest: Digest }, index: number) => {
      const blob = await store.get(context, digest);
      assert.ok(blob);
      const parts: Buffer[] = [];
      let count = 0;
      for await (const chunk of blob.read(0, undefined, { chunkPool: pool })) {
        parts.push(Buffer.from(chunk));
        // Every third chunk is kept (as a cache would); the others go back at once.
        if ((count++ + index) % 3 === 0) kept.push({ chunk, copy: Buffer.from(chunk) });
        else pool.give(chunk);
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.deepEqual(Buffer.concat(parts), data);
    };
    await Promise.all(blobs.map(read));
    await Promise.all(blobs.map(read));
    assert.ok(kept.length > 0);
    for (const { chunk, copy } of kept) assert.deepEqual(chunk, copy, 'a kept chunk was never overwritten');
  });

  it("stops streaming a large blob with CANCELLED once the reader's context aborts", async () => {
    const store = await open(16 * MiB);
    const { data, digest } = testBlob(4 * MiB, 15);
    await putBuffer(context, store, digest, data);
    const controller = new AbortController();
    const blob = await store.get({ ...context, signal: controller.signal }, digest);
    assert.ok(blob);
    let chunks = 0;
    const reading = (async () => {
      for await (const _chunk of blob.read()) {
        chunks++;
        controller.abort();
      }
    })();
    await rejectsWithCode(reading, Code.CANCELLED);
    assert.equal(chunks, 1, 'no chunk after the abort');
  });

  it('with readOnlyBlobs writes every blob, small or spilled to disk, read-only (0444) where diskBlobPath says', async () => {
    const store = await DiskBlobStore.open({ directory, maximumSizeBytes: 16 * MiB, readOnlyBlobs: true });
    opened.push(store);
    for (const { data, digest } of [testBlob(100, 16), testBlob(3 * MiB, 17)]) {
      await putBuffer(context, store, digest, data);
      const path = diskBlobPath(directory, digest);
      assert.equal(store.localPath(context, digest), path);
      assert.equal((await stat(path)).mode & 0o7777, READ_ONLY_BLOB_MODE);
      assert.deepEqual(await readFile(path), data);
    }
  });

  it('without readOnlyBlobs leaves blobs writable by their owner', async () => {
    const store = await open(16 * MiB);
    const { data, digest } = testBlob(100, 18);
    await putBuffer(context, store, digest, data);
    assert.notEqual((await stat(diskBlobPath(directory, digest))).mode & 0o200, 0);
  });
});
