/**
 * The behaviour every BlobStore backend (and every decorator that stores data)
 * must show. Each backend's test file calls blobStoreContract with a factory for a
 * fresh, empty store, so a new backend is checked against exactly the same rules.
 *
 * Backends treat the digest as an opaque key (the Action Cache stores results whose
 * length is not the key's size); checking content against the digest is the job of
 * VerifyingBlobStore. So the tests of wrong-length and corrupt uploads run against
 * the store wrapped in a VerifyingBlobStore, as the CAS uses it, unless the store
 * under test verifies content itself. That still checks what matters about the
 * backend: an upload the verifier rejects is aborted and leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { backgroundContext } from '../../src/context/requestContext.js';
import { type Digest, digestOf, SHA256, SHA384, SHA512 } from '../../src/digest/digest.js';
import { type BlobStore, type BlobWriter, getBuffer, putBuffer, readAll } from '../../src/storage/blobStore.js';
import { VerifyingBlobStore } from '../../src/storage/verifyingBlobStore.js';
import { Code } from '../../src/util/status.js';
import { rejectsWithCode } from './status.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

export interface ContractStore {
  store: BlobStore;
  cleanup(): Promise<void>;
}

export interface ContractOptions {
  /** The store checks written data against the digest itself (as VerifyingBlobStore does). */
  verifiesContent?: boolean;
}

const MiB = 1024 * 1024;

/** Deterministic content; different seeds give different bytes (and so different digests). */
export function testData(sizeBytes: number, seed = 0): Buffer {
  const data = Buffer.allocUnsafe(sizeBytes);
  let state = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < sizeBytes; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    data[i] = state >>> 24;
  }
  return data;
}

/** A blob's content and its SHA-256 digest. */
export function testBlob(sizeBytes: number, seed = 0): { data: Buffer; digest: Digest } {
  const data = testData(sizeBytes, seed);
  return { data, digest: digestOf(data) };
}

/** Writes `data` in chunks of the given sizes (the last size repeats until done). */
export async function writeInChunks(writer: BlobWriter, data: Buffer, chunkSizes: number[]): Promise<void> {
  let position = 0;
  for (let i = 0; position < data.length; i++) {
    const size = chunkSizes[Math.min(i, chunkSizes.length - 1)] as number;
    await writer.write(data.subarray(position, position + size));
    position += size;
  }
}

async function readRange(store: BlobStore, digest: Digest, offset?: number, limit?: number): Promise<Buffer> {
  const blob = await store.get(context, digest);
  assert.ok(blob, 'blob should be present');
  const chunks: Buffer[] = [];
  for await (const chunk of blob.read(offset, limit)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function assertAbsent(store: BlobStore, digest: Digest): Promise<void> {
  assert.deepEqual(
    await store.findMissing(context, [digest]),
    [digest],
    'findMissing should report the blob as missing',
  );
  assert.equal(await store.get(context, digest), undefined, 'get should return undefined');
}

async function assertContent(store: BlobStore, digest: Digest, data: Buffer): Promise<void> {
  assert.deepEqual(await store.findMissing(context, [digest]), [], 'findMissing should report the blob as present');
  const blob = await store.get(context, digest);
  assert.ok(blob, 'blob should be present');
  assert.equal(blob.sizeBytes, data.length);
  const content = await readAll(blob);
  assert.ok(content.equals(data), 'content should match what was written');
}

function sortedKeys(digests: readonly Digest[]): string[] {
  return digests.map((d) => `${d.hash}/${d.sizeBytes}`).sort();
}

export function blobStoreContract(
  name: string,
  makeStore: () => Promise<ContractStore>,
  options: ContractOptions = {},
): void {
  describe(`${name} satisfies the BlobStore contract`, () => {
    let store: BlobStore;
    /** The store as the CAS uses it: checking content against the digest. */
    let verifying: BlobStore;
    let cleanup: () => Promise<void>;
    const through = options.verifiesContent ? '' : ' behind a VerifyingBlobStore';

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      verifying = options.verifiesContent ? store : new VerifyingBlobStore(store);
    });

    afterEach(async () => {
      await cleanup();
    });

    it('returns a small blob exactly as it was written', async () => {
      const { data, digest } = testBlob(1000, 1);
      await putBuffer(context, store, digest, data);
      await assertContent(store, digest, data);
    });

    it('returns a blob larger than 1 MiB that was written in several chunks', async () => {
      const { data, digest } = testBlob(3 * MiB + 12_345, 2);
      const writer = await store.put(context, digest);
      await writeInChunks(writer, data, [1, 700 * 1024, 333_333, 1024 * 1024]);
      await writer.commit();
      await assertContent(store, digest, data);
    });

    it('reports exactly the absent digests from findMissing', async () => {
      const a = testBlob(10, 3);
      const b = testBlob(2 * MiB, 4);
      const x = testBlob(10, 5);
      const y = testBlob(2 * MiB, 6);
      await putBuffer(context, store, a.digest, a.data);
      await putBuffer(context, store, b.digest, b.data);
      const missing = await store.findMissing(context, [a.digest, x.digest, b.digest, y.digest]);
      assert.deepEqual(sortedKeys(missing), sortedKeys([x.digest, y.digest]));
      assert.deepEqual(await store.findMissing(context, []), []);
    });

    it('treats a digest with the right hash but another size as a different, absent blob', async () => {
      const { data, digest } = testBlob(100, 7);
      await putBuffer(context, store, digest, data);
      const other = { hash: digest.hash, sizeBytes: 99 };
      assert.deepEqual(await store.findMissing(context, [other]), [other]);
      assert.equal(await store.get(context, other), undefined);
    });

    it('never reports the empty blob as missing and serves it without it being written', async () => {
      const empties = [SHA256, SHA384, SHA512].map((fn) => digestOf(Buffer.alloc(0), fn));
      assert.deepEqual(await store.findMissing(context, empties), []);
      for (const empty of empties) {
        const blob = await store.get(context, empty);
        assert.ok(blob);
        assert.equal(blob.sizeBytes, 0);
        assert.equal((await readAll(blob)).length, 0);
      }
    });

    it('returns undefined from get for a blob that was never written', async () => {
      assert.equal(await store.get(context, testBlob(10, 8).digest), undefined);
      assert.equal(await store.get(context, testBlob(3 * MiB, 8).digest), undefined);
    });

    it('reads the range given by offset and limit', async () => {
      for (const size of [1000, 3 * MiB + 17]) {
        const { data, digest } = testBlob(size, 9);
        await putBuffer(context, store, digest, data);
        const ranges: Array<[number, number]> = [
          [0, 1],
          [1, 10],
          [size - 10, 10],
          [Math.floor(size / 2), Math.floor(size / 3)],
        ];
        if (size > MiB) ranges.push([MiB - 5, 10], [MiB - 1, MiB + 2]);
        for (const [offset, limit] of ranges) {
          const range = await readRange(store, digest, offset, limit);
          assert.ok(range.equals(data.subarray(offset, offset + limit)), `range ${offset}+${limit} of ${size}`);
        }
        const tail = await readRange(store, digest, 7);
        assert.ok(tail.equals(data.subarray(7)), 'offset without a limit reads to the end');
      }
    });

    it('reads nothing when the offset equals the size or the limit is zero', async () => {
      for (const size of [1000, 2 * MiB]) {
        const { data, digest } = testBlob(size, 10);
        await putBuffer(context, store, digest, data);
        assert.equal((await readRange(store, digest, size)).length, 0);
        assert.equal((await readRange(store, digest, size, 10)).length, 0);
        assert.equal((await readRange(store, digest, 5, 0)).length, 0);
      }
    });

    it('reads to the end when the limit goes beyond it', async () => {
      for (const size of [1000, 2 * MiB + 3]) {
        const { data, digest } = testBlob(size, 11);
        await putBuffer(context, store, digest, data);
        assert.ok((await readRange(store, digest, 0, size + 1)).equals(data));
        assert.ok((await readRange(store, digest, size - 3, 1_000_000_000)).equals(data.subarray(size - 3)));
      }
    });

    it('lets the same opened blob be read more than once', async () => {
      for (const size of [1000, 2 * MiB]) {
        const { data, digest } = testBlob(size, 12);
        await putBuffer(context, store, digest, data);
        const blob = await store.get(context, digest);
        assert.ok(blob);
        assert.ok((await readAll(blob)).equals(data));
        assert.ok((await readAll(blob)).equals(data));
      }
    });

    it('makes nothing visible before commit resolves', async () => {
      for (const size of [1000, 2 * MiB]) {
        const { data, digest } = testBlob(size, 13);
        const writer = await store.put(context, digest);
        await writeInChunks(writer, data, [256 * 1024]);
        await assertAbsent(store, digest);
        await writer.commit();
        await assertContent(store, digest, data);
      }
    });

    it('leaves nothing visible after abort, and abort may be called twice', async () => {
      for (const size of [1000, 2 * MiB]) {
        const { data, digest } = testBlob(size, 14);
        const writer = await store.put(context, digest);
        await writeInChunks(writer, data, [256 * 1024]);
        await writer.abort();
        await writer.abort();
        await assertAbsent(store, digest);
      }
    });

    it('keeps a committed blob when abort is called after the commit', async () => {
      const { data, digest } = testBlob(1000, 15);
      const writer = await store.put(context, digest);
      await writer.write(data);
      await writer.commit();
      await writer.abort();
      await assertContent(store, digest, data);
    });

    if (!options.verifiesContent) {
      it('stores the bytes written under the key even when their length differs from its declared size', async () => {
        for (const [declared, actual] of [
          [1000, 10],
          [10, 1000],
          [2 * MiB, MiB + 1],
          [10, 2 * MiB],
        ] as const) {
          const data = testData(actual, declared);
          const key = {
            hash: digestOf(testData(declared, actual)).hash,
            sizeBytes: declared,
          };
          await putBuffer(context, store, key, data);
          await assertContent(store, key, data);
          assert.ok((await readRange(store, key, 5, 3)).equals(data.subarray(5, 8)));
        }
      });
    }

    it(`fails a commit with too few bytes with INVALID_ARGUMENT and leaves nothing${through}`, async () => {
      const store = verifying;
      for (const size of [1000, 2 * MiB]) {
        const { data, digest } = testBlob(size, 16);
        const writer = await store.put(context, digest);
        await writeInChunks(writer, data.subarray(0, size - 1), [512 * 1024]);
        await rejectsWithCode(writer.commit(), Code.INVALID_ARGUMENT);
        await writer.abort();
        await assertAbsent(store, digest);
      }
    });

    it(`fails when more bytes than the digest declares are written, and leaves nothing${through}`, async () => {
      const store = verifying;
      for (const size of [1000, 2 * MiB]) {
        const { data, digest } = testBlob(size, 17);
        const writer = await store.put(context, digest);
        const tooLong = Buffer.concat([data, Buffer.from('extra')]);
        // The store may refuse at the write that overflows or at commit; either way it must refuse.
        const outcome = (async () => {
          await writeInChunks(writer, tooLong, [512 * 1024]);
          await writer.commit();
        })();
        await rejectsWithCode(outcome, Code.INVALID_ARGUMENT);
        await writer.abort();
        await assertAbsent(store, digest);
      }
    });

    it('lets concurrent writers of the same blob both succeed with the right content', async () => {
      for (const size of [1000, 3 * MiB]) {
        const { data, digest } = testBlob(size, 18);
        const first = await store.put(context, digest);
        const second = await store.put(context, digest);
        const chunk = 400 * 1024;
        for (let position = 0; position < size; position += chunk) {
          await first.write(data.subarray(position, position + chunk));
          await second.write(data.subarray(position, position + chunk));
        }
        await Promise.all([first.commit(), second.commit()]);
        await assertContent(store, digest, data);
      }
    });

    it(`fails with INVALID_ARGUMENT for data that does not match the digest, and leaves nothing${through}`, async () => {
      const store = verifying;
      for (const size of [1000, 2 * MiB]) {
        const { digest } = testBlob(size, 20);
        const writer = await store.put(context, digest);
        await writeInChunks(writer, testData(size, 21), [512 * 1024]);
        await rejectsWithCode(writer.commit(), Code.INVALID_ARGUMENT);
        await writer.abort();
        await assertAbsent(store, digest);
      }
    });

    it(`keeps an existing copy when a later write of the same blob is aborted or fails${through}`, async () => {
      const store = verifying;
      for (const size of [1000, 2 * MiB]) {
        const { data, digest } = testBlob(size, 19);
        await putBuffer(context, store, digest, data);

        const aborted = await store.put(context, digest);
        await aborted.write(data.subarray(0, size >> 1));
        await aborted.abort();
        await assertContent(store, digest, data);

        const short = await store.put(context, digest);
        await short.write(data.subarray(0, size - 1));
        await rejectsWithCode(short.commit(), Code.INVALID_ARGUMENT);
        await short.abort();
        await assertContent(store, digest, data);

        const long = await store.put(context, digest);
        const overflow = (async () => {
          await long.write(data);
          await long.write(Buffer.from('x'));
          await long.commit();
        })();
        await rejectsWithCode(overflow, Code.INVALID_ARGUMENT);
        await long.abort();
        await assertContent(store, digest, data);

        const corrupt = await store.put(context, digest);
        await corrupt.write(testData(size, 22));
        await rejectsWithCode(corrupt.commit(), Code.INVALID_ARGUMENT);
        await corrupt.abort();
        await assertContent(store, digest, data);
      }
    });

    it('stores many blobs written in parallel', async () => {
      const blobs = Array.from({ length: 200 }, (_, i) => testBlob(i % 10 === 0 ? MiB + i : 100 + i, 1000 + i));
      await Promise.all(blobs.map(({ data, digest }) => putBuffer(context, store, digest, data)));
      assert.deepEqual(
        await store.findMissing(
          context,
          blobs.map((b) => b.digest),
        ),
        [],
      );
      const contents = await Promise.all(blobs.map(({ digest }) => getBuffer(context, store, digest)));
      contents.forEach((content, i) => {
        assert.ok(content?.equals(blobs[i]?.data as Buffer), `blob ${i}`);
      });
    });
  });
}
