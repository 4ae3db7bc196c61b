import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { blobStoreContract, testBlob } from '../../test/support/blobStoreContract.js';
import { crashBlobSize } from '../../test/support/segmentCrashWriter.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { assertStoreLocksItsDirectory } from '../../test/support/storeLock.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestOf, SHA1 } from '../digest/digest.js';
import { Code } from '../util/status.js';
import { getBuffer, putBuffer } from './blobStore.js';
import type { EvictionRound } from './eviction.js';
import { SegmentBlobStore, type SegmentBlobStoreOptions } from './segmentBlobStore.js';

const context = backgroundContext();
const MiB = 1024 * 1024;
/** Header (16 bytes) and key ("<64 hex>-<size>") of a record, for blobs of 100 to 999 bytes. */
const RECORD_OVERHEAD = 16 + 64 + 1 + 3;

async function freshDirectory(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'granary-segments-test-'));
}

blobStoreContract('SegmentBlobStore', async () => {
  const directory = await freshDirectory();
  const store = await SegmentBlobStore.open({ directory, maximumSizeBytes: 1024 * MiB });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
});

blobStoreContract('SegmentBlobStore with asynchronous I/O only', async () => {
  const directory = await freshDirectory();
  const store = await SegmentBlobStore.open({ directory, maximumSizeBytes: 1024 * MiB, synchronousIoBytes: 0 });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
});

describe('SegmentBlobStore', () => {
  let directory: string;
  const opened: SegmentBlobStore[] = [];

  async function open(options: Partial<SegmentBlobStoreOptions> = {}): Promise<SegmentBlobStore> {
    const store = await SegmentBlobStore.open({ directory, maximumSizeBytes: 64 * MiB, ...options });
    opened.push(store);
    return store;
  }

  async function putAll(store: SegmentBlobStore, blobs: ReadonlyArray<{ data: Buffer; digest: Digest }>) {
    for (const { data, digest } of blobs) await putBuffer(context, store, digest, data);
  }

  async function segmentFiles(): Promise<string[]> {
    return (await readdir(directory)).filter((name) => name.endsWith('.seg')).sort();
  }

  async function assertHolds(store: SegmentBlobStore, blobs: ReadonlyArray<{ data: Buffer; digest: Digest }>) {
    for (const [i, { data, digest }] of blobs.entries()) {
      assert.ok((await getBuffer(context, store, digest))?.equals(data), `blob ${i} is intact`);
    }
  }

  beforeEach(async () => {
    directory = await freshDirectory();
    opened.length = 0;
  });

  afterEach(async () => {
    for (const store of opened.reverse()) await store.close().catch(() => undefined);
    await rm(directory, { recursive: true, force: true });
  });

  describe('eviction', () => {
    it('never holds more than its bound, and evicts the oldest segments first', async () => {
      const rounds: EvictionRound[] = [];
      // Records of about 284 bytes; segments of 1,000 bytes hold three; the bound holds three segments.
      const store = await open({ maximumSizeBytes: 3000, segmentBytes: 1000, onEviction: (r) => rounds.push(r) });
      const blobs = Array.from({ length: 30 }, (_, seed) => testBlob(200, seed));
      for (const blob of blobs) {
        await putAll(store, [blob]);
        const usage = store.usage(context);
        assert.ok(usage.usedBytes <= 3000, `${usage.usedBytes} bytes used`);
        let bytesOnDisk = 0;
        for (const name of await segmentFiles()) bytesOnDisk += (await stat(join(directory, name))).size;
        assert.ok(bytesOnDisk <= 3000, `${bytesOnDisk} bytes in segment files`);
      }
      const missing = await store.findMissing(
        context,
        blobs.map((b) => b.digest),
      );
      // The newest blobs survive, the oldest went first, whole segments at a time.
      assert.deepEqual(
        missing,
        blobs.slice(0, missing.length).map((b) => b.digest),
      );
      assert.ok(missing.length >= 20 && missing.length <= 24, `${missing.length} evicted`);
      await assertHolds(store, blobs.slice(missing.length));
      assert.equal(store.usage(context).blobCount, 30 - missing.length);
      assert.ok(rounds.length > 0 && rounds.every((r) => r.blobs === 3 && r.usedBytes <= 3000));
    });

    it('copies a blob used while in the oldest quarter forward, so it outlives its segment', async () => {
      const store = await open({ maximumSizeBytes: 8 * 1000, segmentBytes: 1000 });
      const hot = testBlob(200, 1000);
      await putAll(store, [hot]);
      const blobs = Array.from({ length: 60 }, (_, seed) => testBlob(200, seed));
      for (const blob of blobs) {
        await putAll(store, [blob]);
        assert.ok(await getBuffer(context, store, hot.digest), 'the hot blob is still there');
      }
      assert.ok(store.usage(context).usedBytes <= 8000);
      assert.ok((await store.findMissing(context, [blobs[0]!.digest])).length === 1, 'cold blobs are evicted');
    });

    it('fails with RESOURCE_EXHAUSTED for a blob larger than the whole bound and keeps what it holds', async () => {
      const store = await open({ maximumSizeBytes: 2000 });
      const small = testBlob(200, 1);
      await putAll(store, [small]);
      const big = testBlob(2000, 2);
      await rejectsWithCode(putBuffer(context, store, big.digest, big.data), Code.RESOURCE_EXHAUSTED);
      assert.equal(await store.get(context, big.digest), undefined);
      await assertHolds(store, [small]);
    });

    it('writes a blob stored again with the same bytes only once', async () => {
      const store = await open();
      const blob = testBlob(500, 3);
      await putAll(store, [blob, blob, blob]);
      assert.equal(store.usage(context).usedBytes, 500 + RECORD_OVERHEAD);
      assert.equal(store.usage(context).blobCount, 1);
    });
  });

  describe('restart', () => {
    it('rebuilds its index from the segments: every blob, the latest bytes of a rewritten key, the same usage', async () => {
      let store = await open({ segmentBytes: 4000 });
      const blobs = Array.from({ length: 40 }, (_, seed) => testBlob(100 + seed * 13, seed));
      await putAll(store, blobs);
      const large = testBlob(3 * MiB, 99);
      await putAll(store, [large]);
      // An action-cache style key rewritten with other bytes: the later record wins.
      const key = testBlob(50, 500).digest;
      await putBuffer(context, store, key, Buffer.from('first'));
      await putBuffer(context, store, key, Buffer.from('second'));
      const usage = store.usage(context);
      await store.close();
      assert.ok((await segmentFiles()).length > 2, 'the blobs span several segments');

      store = await open({ segmentBytes: 4000 });
      assert.deepEqual(store.usage(context), usage);
      await assertHolds(store, [...blobs, large]);
      assert.equal((await getBuffer(context, store, key))?.toString(), 'second');
      const more = testBlob(300, 77);
      await putAll(store, [more]);
      await assertHolds(store, [more]);
    });

    it('lists each stored key once, its latest record, including keys of other digest functions', async () => {
      const store = await open({ segmentBytes: 1000 });
      const blobs = Array.from({ length: 8 }, (_, seed) => testBlob(200, seed));
      await putAll(store, blobs);
      const key = testBlob(50, 500).digest;
      await putBuffer(context, store, key, Buffer.from('first'));
      await putBuffer(context, store, key, Buffer.from('second'));
      const sha1 = digestOf('x', SHA1);
      await putBuffer(context, store, sha1, Buffer.from('x'));
      const listed = await store.list(context);
      assert.deepEqual(listed, [...blobs.map((b) => b.digest), key, sha1]);
    });

    it('keys blobs of other digest functions apart', async () => {
      let store = await open();
      const data = Buffer.from('hello, sha1');
      const sha1 = digestOf(data, SHA1);
      await putBuffer(context, store, sha1, data);
      await store.close();
      store = await open();
      assert.ok((await getBuffer(context, store, sha1))?.equals(data));
      assert.deepEqual(await store.findMissing(context, [{ hash: sha1.hash, sizeBytes: 12 }]), [
        { hash: sha1.hash, sizeBytes: 12 },
      ]);
    });

    it('truncates a torn tail and keeps every whole record before it', async () => {
      let store = await open();
      const blobs = Array.from({ length: 10 }, (_, seed) => testBlob(300, seed));
      await putAll(store, blobs);
      const torn = testBlob(300, 50);
      await putAll(store, [torn]);
      await store.close();
      const [file] = await segmentFiles();
      const path = join(directory, file as string);
      const whole = (await stat(path)).size;
      // The last append was cut short halfway through its data.
      await truncate(path, whole - 150);

      store = await open();
      await assertHolds(store, blobs);
      assert.equal(await store.get(context, torn.digest), undefined);
      assert.equal((await stat(path)).size, whole - 300 - RECORD_OVERHEAD, 'the torn record is cut off');
      await putAll(store, [torn]);
      await store.close();
      store = await open();
      await assertHolds(store, [...blobs, torn]);
    });

    it('drops a record whose bytes changed on disk, and everything after it in that segment', async () => {
      let store = await open();
      const blobs = Array.from({ length: 6 }, (_, seed) => testBlob(300, seed));
      await putAll(store, blobs);
      await store.close();
      const [file] = await segmentFiles();
      const path = join(directory, file as string);
      const bytes = await readFile(path);
      const recordBytes = 300 + RECORD_OVERHEAD;
      bytes[3 * recordBytes + 200] = (bytes[3 * recordBytes + 200] as number) ^ 0xff; // inside the fourth blob's data
      await writeFile(path, bytes);

      store = await open();
      await assertHolds(store, blobs.slice(0, 3));
      assert.deepEqual(
        await store.findMissing(
          context,
          blobs.map((b) => b.digest),
        ),
        blobs.slice(3).map((b) => b.digest),
      );
    });

    it('ignores garbage appended after the last record', async () => {
      let store = await open();
      const blobs = [testBlob(300, 1), testBlob(300, 2)];
      await putAll(store, blobs);
      await store.close();
      const [file] = await segmentFiles();
      await appendFile(join(directory, file as string), Buffer.alloc(100, 0));
      store = await open();
      await assertHolds(store, blobs);
      assert.equal(store.usage(context).blobCount, 2);
    });

    for (const mode of ['put', 'batch'] as const) {
      it(`loses no acknowledged blob and shows no corrupt one when its process is killed mid-write (${mode})`, async () => {
        const writer = fileURLToPath(new URL('../../test/support/segmentCrashWriter.js', import.meta.url));
        for (const killAfter of mode === 'put' ? [50, 400, 1500] : [40, 800]) {
          const acknowledged = new Set<number>();
          const child = spawn(process.execPath, [writer, directory, String(64 * MiB), mode], {
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          const exited = new Promise((resolve) => child.once('exit', resolve));
          for await (const line of createInterface({ input: child.stdout })) {
            acknowledged.add(Number(line));
            if (acknowledged.size === killAfter) child.kill('SIGKILL');
          }
          await exited;
          assert.ok(acknowledged.size >= killAfter, `the writer acknowledged ${acknowledged.size} blobs`);

          const store = await open();
          // Each round writes the same seeds again from 0; look at every seed written so far and a margin.
          const highest = Math.max(...acknowledged);
          for (let seed = 0; seed <= highest + 64; seed++) {
            const { data, digest } = testBlob(crashBlobSize(seed), seed);
            const stored = await getBuffer(context, store, digest);
            if (acknowledged.has(seed)) assert.ok(stored, `acknowledged blob ${seed} survived the kill`);
            if (stored) assert.ok(stored.equals(data), `blob ${seed} is intact`);
          }
          await store.close();
        }
      });
    }
  });

  it('appends a batch together: every blob visible once it resolves, again after reopening, duplicates and the empty blob skipped', async () => {
    const store = await open({ synchronousIoBytes: 0 });
    const blobs = Array.from({ length: 300 }, (_, seed) => testBlob(100 + seed * 13, 1000 + seed));
    await store.putBatch(context, [
      ...blobs,
      blobs[0] as (typeof blobs)[number],
      { data: Buffer.alloc(0), digest: digestOf(Buffer.alloc(0)) },
    ]);
    for (const { data, digest } of blobs) assert.ok((await getBuffer(context, store, digest))?.equals(data));
    const used = store.usage(context).usedBytes;
    await store.putBatch(context, blobs.slice(0, 10));
    assert.equal(store.usage(context).usedBytes, used, 'the same bytes again are not written');
    await store.close();
    const reopened = await open();
    for (const { data, digest } of blobs) assert.ok((await getBuffer(context, reopened, digest))?.equals(data));
    assert.equal(reopened.usage(context).blobCount, blobs.length);
  });

  it('fails a batch holding a blob larger than the whole bound, and keeps the others of it', async () => {
    const store = await open({ maximumSizeBytes: MiB });
    const small = testBlob(1000, 7);
    const huge = testBlob(2 * MiB, 8);
    await rejectsWithCode(store.putBatch(context, [small, huge]), Code.RESOURCE_EXHAUSTED);
    assert.ok((await getBuffer(context, store, small.digest))?.equals(small.data));
    assert.deepEqual(await store.findMissing(context, [huge.digest]), [huge.digest]);
  });

  describe('index files', () => {
    /** 40 blobs of 300 to 690 bytes in segments of 4,000 bytes: about 11 segments, all but the last sealed. */
    const blobs = Array.from({ length: 40 }, (_, seed) => testBlob(300 + seed * 10, seed));

    async function filledAndClosed(): Promise<void> {
      const store = await open({ segmentBytes: 4000 });
      await putAll(store, blobs);
      await store.close();
    }

    async function indexFiles(): Promise<string[]> {
      return (await readdir(directory)).filter((name) => name.endsWith('.idx')).sort();
    }

    /** Index files for every sealed segment and no other, `files` included (reads copy blobs forward into more segments). */
    async function assertEverySealedSegmentIndexed(files: readonly string[]): Promise<void> {
      const now = await indexFiles();
      assert.deepEqual(
        now,
        (await segmentFiles()).slice(0, -1).map((name) => name.replace('.seg', '.idx')),
      );
      for (const name of files) assert.ok(now.includes(name), `${name} written again`);
    }

    /** The paths of the sealed segment files, oldest first. */
    async function sealedSegments(): Promise<string[]> {
      return (await segmentFiles()).slice(0, -1).map((name) => join(directory, name));
    }

    it('are written for every sealed segment and none for the one appended to, and give back every blob', async () => {
      await filledAndClosed();
      const segments = await segmentFiles();
      assert.ok(segments.length > 5, `${segments.length} segments`);
      assert.deepEqual(
        await indexFiles(),
        segments.slice(0, -1).map((name) => name.replace('.seg', '.idx')),
      );
      const store = await open({ segmentBytes: 4000 });
      await assertHolds(store, blobs);
      assert.equal(store.usage(context).blobCount, blobs.length);
      const more = Array.from({ length: 20 }, (_, seed) => testBlob(400, 100 + seed));
      await putAll(store, more);
      await store.close();
      const reopened = await open({ segmentBytes: 4000 });
      await assertHolds(reopened, [...blobs, ...more]);
      // Reading old blobs copies them forward, which may seal more segments.
      await reopened.close();
      assert.equal((await indexFiles()).length, (await segmentFiles()).length - 1);
    });

    it('are used instead of reading the segment: a record changed on disk after sealing is dropped on read, the records after it are kept', async () => {
      await filledAndClosed();
      const [first] = await sealedSegments();
      const bytes = await readFile(first as string);
      // Inside the first record's data (its header and key take 16 + 68 bytes).
      bytes[200] = (bytes[200] as number) ^ 0xff;
      await writeFile(first as string, bytes);
      const store = await open({ segmentBytes: 4000 });
      assert.equal(await store.get(context, blobs[0]!.digest), undefined, 'the changed record is not served');
      assert.deepEqual(await store.findMissing(context, [blobs[0]!.digest]), [blobs[0]!.digest], 'and no longer found');
      // A scan would have cut the segment at the first record; the index file keeps the others.
      await assertHolds(store, blobs.slice(1));
      // Stored again, it is written anew, not taken for the record already there.
      await putAll(store, [blobs[0]!]);
      await assertHolds(store, [blobs[0]!]);
    });

    it('checks a streamed large record of an indexed segment when it is read whole', async () => {
      let store = await open({ segmentBytes: MiB });
      const large = testBlob(3 * MiB, 5);
      await putAll(store, [large, testBlob(300, 6)]);
      await store.close();
      const [first] = await sealedSegments();
      const bytes = await readFile(first as string);
      bytes[2 * MiB] = (bytes[2 * MiB] as number) ^ 0xff;
      await writeFile(first as string, bytes);
      store = await open({ segmentBytes: MiB });
      const blob = await store.get(context, large.digest);
      assert.ok(blob);
      const reading = (async () => {
        for await (const _chunk of blob.read()) {
          // drain
        }
      })();
      await rejectsWithCode(reading, Code.NOT_FOUND);
      assert.equal(await store.get(context, large.digest), undefined);
    });

    for (const [damage, change] of [
      ['corrupt', (bytes: Buffer) => Buffer.from(bytes).fill(0x55, 100, 110)],
      ['truncated', (bytes: Buffer) => bytes.subarray(0, bytes.length - 20)],
      ['empty', () => Buffer.alloc(0)],
    ] as const) {
      it(`fall back to reading the segment when ${damage}, and are written again`, async () => {
        await filledAndClosed();
        const files = await indexFiles();
        const damaged = new Map<string, Buffer>();
        for (const name of files) {
          const path = join(directory, name);
          const bad = change(await readFile(path));
          damaged.set(name, bad);
          await writeFile(path, bad);
        }
        const store = await open({ segmentBytes: 4000 });
        await assertHolds(store, blobs);
        assert.equal(store.usage(context).blobCount, blobs.length);
        await store.close();
        await assertEverySealedSegmentIndexed(files);
        for (const name of files) {
          assert.ok(!(await readFile(join(directory, name))).equals(damaged.get(name) as Buffer), `${name} rewritten`);
        }
      });
    }

    it('are stale when their segment was cut short: the segment is read and cut at its last whole record', async () => {
      await filledAndClosed();
      const [first] = await sealedSegments();
      const whole = (await stat(first as string)).size;
      await truncate(first as string, whole - 100);
      const store = await open({ segmentBytes: 4000 });
      const missing = await store.findMissing(
        context,
        blobs.map((b) => b.digest),
      );
      assert.equal(missing.length, 1, 'only the cut record is gone');
      for (const { data, digest } of blobs) {
        const stored = await getBuffer(context, store, digest);
        if (stored) assert.ok(stored.equals(data));
      }
    });

    it('are stale when another file took the segment’s place, even of the same length', async () => {
      await filledAndClosed();
      const [first, second] = await sealedSegments();
      // The second segment's bytes under the first one's name, as a new file (another inode).
      const replacement = await readFile(second as string);
      await rm(first as string);
      await writeFile(first as string, replacement);
      const store = await open({ segmentBytes: 4000 });
      // The first segment's blobs are gone, the second's are still found and intact.
      const missing = await store.findMissing(
        context,
        blobs.map((b) => b.digest),
      );
      assert.ok(missing.length > 0 && missing.length < 10, `${missing.length} missing`);
      await assertHolds(
        store,
        blobs.filter((b) => !missing.includes(b.digest)),
      );
    });

    it('are not needed: a crash between a segment and its index file leaves the segment to be read', async () => {
      await filledAndClosed();
      const files = await indexFiles();
      for (const name of files) await rm(join(directory, name));
      // An index file cut short before its rename, and one of a segment that is gone.
      await writeFile(join(directory, files[0]!.replace('.idx', '.idx.tmp')), Buffer.alloc(30));
      await writeFile(join(directory, '0000009999.idx'), Buffer.alloc(64));
      const store = await open({ segmentBytes: 4000 });
      await assertHolds(store, blobs);
      await store.close();
      await assertEverySealedSegmentIndexed(files);
      assert.deepEqual(
        (await readdir(directory)).filter((name) => name.endsWith('.tmp')),
        [],
      );
      const reopened = await open({ segmentBytes: 4000 });
      await assertHolds(reopened, blobs);
    });

    it('are deleted with their segment when it is evicted', async () => {
      const store = await open({ maximumSizeBytes: 3000, segmentBytes: 1000 });
      for (let seed = 0; seed < 30; seed++) {
        await putAll(store, [testBlob(200, seed)]);
        // Let the background index writes run.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await store.close();
      const segments = new Set((await segmentFiles()).map((name) => name.replace('.seg', '')));
      const indexes = (await indexFiles()).map((name) => name.replace('.idx', ''));
      assert.ok(indexes.length > 0);
      for (const id of indexes) assert.ok(segments.has(id), `${id}.idx has its segment`);
      assert.ok(segments.size <= 4);
    });
  });

  it('is refused while another process has its directory open, and holds the directory until closed', async () => {
    await assertStoreLocksItsDirectory(directory, () => SegmentBlobStore.open({ directory, maximumSizeBytes: MiB }));
  });

  it('streams a large blob in bounded chunks and honours offsets', async () => {
    const store = await open();
    const { data, digest } = testBlob(3 * MiB + 5, 7);
    await putAll(store, [{ data, digest }]);
    const blob = await store.get(context, digest);
    assert.ok(blob);
    const chunks: Buffer[] = [];
    for await (const chunk of blob.read(10, 2 * MiB)) chunks.push(chunk);
    assert.ok(chunks.every((chunk) => chunk.length <= MiB));
    assert.ok(Buffer.concat(chunks).equals(data.subarray(10, 10 + 2 * MiB)));
  });

  it('reports a large blob evicted while it is streamed as NOT_FOUND', async () => {
    const store = await open({ maximumSizeBytes: 5 * MiB, segmentBytes: MiB });
    const first = testBlob(2 * MiB, 13);
    await putAll(store, [first]);
    const blob = await store.get(context, first.digest);
    assert.ok(blob);
    await putAll(store, [testBlob(2 * MiB, 14), testBlob(2 * MiB, 15)]);
    const reading = (async () => {
      for await (const _chunk of blob.read()) {
        // drain
      }
    })();
    await rejectsWithCode(reading, Code.NOT_FOUND);
  });
});
