import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openWrite, readResource, startTestServer, type TestServer, writeResource } from '../../test/support/grpc.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { unary } from '../client/connection.js';
import { type Digest, digestOf } from '../digest/digest.js';
import type { FindMissingBlobsResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { QueryWriteStatusResponse } from '../gen/google/bytestream/bytestream.js';
import type { Blob } from '../storage/blobStore.js';
import { Code } from '../util/status.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
});

const KiB = 1024;
const MiB = 1024 * KiB;

const readName = (d: Digest, instance = '') => `${instance ? `${instance}/` : ''}blobs/${d.hash}/${d.sizeBytes}`;
const uploadName = (d: Digest, instance = '', uuid = randomUUID()) =>
  `${instance ? `${instance}/` : ''}uploads/${uuid}/blobs/${d.hash}/${d.sizeBytes}`;

async function isMissing(digest: Digest): Promise<boolean> {
  const response = await unary<FindMissingBlobsResponse>((done) =>
    t.client.cas.findMissingBlobs({ instanceName: '', blobDigests: [digest], digestFunction: 0 }, done),
  );
  return response.missingBlobDigests.length > 0;
}

function queryWriteStatus(resourceName: string): Promise<QueryWriteStatusResponse> {
  return unary<QueryWriteStatusResponse>((done) => t.client.byteStream.queryWriteStatus({ resourceName }, done));
}

function testBlob(size: number) {
  const data = randomBytes(size);
  return { data, digest: digestOf(data) };
}

describe('ByteStream Write and Read', () => {
  for (const instance of ['', 'ci/linux-x86']) {
    it(`round-trips a 5 MiB blob written in 64 KiB chunks${instance ? ' under a multi-segment instance name' : ' without an instance name'}`, async () => {
      const { data, digest } = testBlob(5 * MiB);
      const response = await writeResource(t.client, uploadName(digest, instance), data, { chunkSize: 64 * KiB });
      assert.equal(response.committedSize, data.length);
      assert.equal(await isMissing(digest), false);
      const read = await readResource(t.client, readName(digest, instance));
      assert.equal(read.length, data.length);
      assert.ok(read.equals(data), 'the data read back equals the data written');
    });
  }

  it('reads with an explicit digest function segment in the name', async () => {
    const { data, digest } = testBlob(1000);
    await writeResource(t.client, `uploads/${randomUUID()}/blobs/sha256/${digest.hash}/${digest.sizeBytes}`, data);
    assert.ok((await readResource(t.client, `blobs/sha256/${digest.hash}/${digest.sizeBytes}`)).equals(data));
  });

  it('reads the range given by read_offset and read_limit', async () => {
    const { data, digest } = testBlob(3 * MiB + 17);
    await writeResource(t.client, uploadName(digest), data, { chunkSize: MiB });
    const name = readName(digest);
    assert.ok((await readResource(t.client, name, 100, 1000)).equals(data.subarray(100, 1100)));
    assert.ok((await readResource(t.client, name, MiB - 5, 2 * MiB)).equals(data.subarray(MiB - 5, 3 * MiB - 5)));
    assert.ok(
      (await readResource(t.client, name, 2 * MiB)).equals(data.subarray(2 * MiB)),
      'no limit reads to the end',
    );
    assert.ok(
      (await readResource(t.client, name, 10, 10 * MiB)).equals(data.subarray(10)),
      'a limit past the end stops at the end',
    );
    assert.equal(
      (await readResource(t.client, name, data.length)).length,
      0,
      'an offset equal to the size reads nothing',
    );
  });

  it('fails a read with OUT_OF_RANGE when read_offset is beyond the size or negative', async () => {
    const { data, digest } = testBlob(100);
    await writeResource(t.client, uploadName(digest), data);
    await rejectsWithCode(readResource(t.client, readName(digest), 101), Code.OUT_OF_RANGE);
    await rejectsWithCode(readResource(t.client, readName(digest), -1), Code.OUT_OF_RANGE);
  });

  it('fails a read with a negative read_limit', async () => {
    const { data, digest } = testBlob(100);
    await writeResource(t.client, uploadName(digest), data);
    await rejectsWithCode(readResource(t.client, readName(digest), 0, -1), Code.INVALID_ARGUMENT);
  });

  it('fails a read of a missing blob with NOT_FOUND', async () => {
    await rejectsWithCode(readResource(t.client, readName(digestOf('never written'))), Code.NOT_FOUND);
  });

  it('reads the empty blob without it having been written', async () => {
    assert.equal((await readResource(t.client, readName(digestOf('')))).length, 0);
  });

  it('rejects malformed resource names with INVALID_ARGUMENT', async () => {
    const d = digestOf('x');
    for (const name of [
      '',
      'blobs',
      `blobs/${d.hash}`,
      `blobs/${d.hash}/-1`,
      `blobs/${'q'.repeat(64)}/1`,
      `uploads/blobs/${d.hash}/1`,
    ]) {
      await rejectsWithCode(readResource(t.client, name), Code.INVALID_ARGUMENT, `read "${name}"`);
    }
    for (const name of [
      '',
      readName(d),
      `uploads/${randomUUID()}/blobs/${d.hash}`,
      `uploads/${randomUUID()}/blobs/${d.hash}/x`,
    ]) {
      await rejectsWithCode(writeResource(t.client, name, Buffer.from('x')), Code.INVALID_ARGUMENT, `write "${name}"`);
      await rejectsWithCode(queryWriteStatus(name), Code.INVALID_ARGUMENT, `query "${name}"`);
    }
  });

  it('rejects data that does not match the digest with INVALID_ARGUMENT and does not store it', async () => {
    const { digest } = testBlob(200 * KiB);
    const wrong = randomBytes(200 * KiB);
    await rejectsWithCode(writeResource(t.client, uploadName(digest), wrong), Code.INVALID_ARGUMENT);
    assert.equal(await isMissing(digest), true);
    await rejectsWithCode(readResource(t.client, readName(digest)), Code.NOT_FOUND);
  });

  it('rejects finishing with fewer bytes than the size with INVALID_ARGUMENT', async () => {
    const { data, digest } = testBlob(100 * KiB);
    await rejectsWithCode(
      writeResource(t.client, uploadName(digest), data.subarray(0, 50 * KiB)),
      Code.INVALID_ARGUMENT,
    );
    assert.equal(await isMissing(digest), true);
  });

  it('rejects more bytes than the size with INVALID_ARGUMENT', async () => {
    const { data, digest } = testBlob(1000);
    await rejectsWithCode(
      writeResource(t.client, uploadName(digest), Buffer.concat([data, Buffer.from('!')])),
      Code.INVALID_ARGUMENT,
    );
    assert.equal(await isMissing(digest), true);
  });

  it('rejects a write_offset that skips ahead with INVALID_ARGUMENT', async () => {
    const { data, digest } = testBlob(3000);
    const call = openWrite(t.client);
    const name = uploadName(digest);
    await call.send({ resourceName: name, writeOffset: 0, data: data.subarray(0, 1000) });
    await call.send({ writeOffset: 2000, data: data.subarray(2000), finishWrite: true });
    call.end();
    await rejectsWithCode(call.response, Code.INVALID_ARGUMENT);
    assert.equal(await isMissing(digest), true);
  });

  it('rejects a first write_offset beyond zero for an upload it does not know with INVALID_ARGUMENT', async () => {
    const { data, digest } = testBlob(3000);
    await rejectsWithCode(
      writeResource(t.client, uploadName(digest), data, { startOffset: 1000 }),
      Code.INVALID_ARGUMENT,
    );
    assert.equal(await isMissing(digest), true);
  });

  it('rejects a resource name that changes in the middle of a call with INVALID_ARGUMENT', async () => {
    const first = testBlob(100);
    const other = testBlob(100);
    const call = openWrite(t.client);
    await call.send({ resourceName: uploadName(first.digest), writeOffset: 0, data: first.data.subarray(0, 50) });
    await call.send({
      resourceName: uploadName(other.digest),
      writeOffset: 50,
      data: first.data.subarray(50),
      finishWrite: true,
    });
    call.end();
    await rejectsWithCode(call.response, Code.INVALID_ARGUMENT);
    assert.equal(await isMissing(first.digest), true);
  });

  it('rejects a first WriteRequest without a resource name with INVALID_ARGUMENT', async () => {
    const call = openWrite(t.client);
    await call.send({ writeOffset: 0, data: Buffer.from('anonymous'), finishWrite: true });
    call.end();
    await rejectsWithCode(call.response, Code.INVALID_ARGUMENT);
  });

  it('answers a write of an already-present blob early with committed_size equal to the size', async () => {
    const { data, digest } = testBlob(1 * MiB);
    await writeResource(t.client, uploadName(digest), data);
    const call = openWrite(t.client);
    await call.send({ resourceName: uploadName(digest), writeOffset: 0, data: data.subarray(0, 64 * KiB) });
    const response = await call.response;
    assert.equal(response.committedSize, digest.sizeBytes);
    call.end();
    const complete = await queryWriteStatus(uploadName(digest));
    assert.deepEqual(complete, { committedSize: digest.sizeBytes, complete: true });
  });

  it('resumes an upload whose call was cancelled from the committed size reported by QueryWriteStatus', async () => {
    const { data, digest } = testBlob(2 * MiB);
    const name = uploadName(digest);
    const half = data.length / 2;
    const call = openWrite(t.client);
    for (let offset = 0; offset < half; offset += 64 * KiB) {
      await call.send({
        resourceName: offset === 0 ? name : '',
        writeOffset: offset,
        data: data.subarray(offset, offset + 64 * KiB),
      });
    }
    // Let the server take in what was sent before breaking the call.
    for (let i = 0; (await queryWriteStatus(name)).committedSize < half; i++) {
      assert.ok(i < 500, 'the server receives the first half');
      await sleep(10);
    }
    call.cancel();
    await rejectsWithCode(call.response, Code.CANCELLED);
    const status = await queryWriteStatus(name);
    assert.deepEqual(status, { committedSize: half, complete: false });
    const response = await writeResource(t.client, name, data, {
      startOffset: status.committedSize,
      chunkSize: 64 * KiB,
    });
    assert.equal(response.committedSize, data.length);
    assert.ok((await readResource(t.client, readName(digest))).equals(data));
    assert.deepEqual(await queryWriteStatus(name), { committedSize: data.length, complete: true });
  });

  it('resumes an upload that was cancelled at an arbitrary point', async () => {
    const { data, digest } = testBlob(4 * MiB);
    const name = uploadName(digest);
    const call = openWrite(t.client);
    for (let offset = 0; offset < data.length / 2; offset += 64 * KiB) {
      await call.send({
        resourceName: offset === 0 ? name : '',
        writeOffset: offset,
        data: data.subarray(offset, offset + 64 * KiB),
      });
    }
    call.cancel();
    await rejectsWithCode(call.response, Code.CANCELLED);
    const status = await queryWriteStatus(name);
    assert.equal(status.complete, false);
    assert.ok(status.committedSize <= data.length / 2);
    await writeResource(t.client, name, data, { startOffset: status.committedSize });
    assert.ok((await readResource(t.client, readName(digest))).equals(data));
  });

  it('keeps an upload that was half-closed without finish_write resumable', async () => {
    const { data, digest } = testBlob(300 * KiB);
    const name = uploadName(digest);
    const partial = await writeResource(t.client, name, data.subarray(0, 100 * KiB), { finish: false });
    assert.equal(partial.committedSize, 100 * KiB);
    assert.equal(await isMissing(digest), true, 'nothing is visible before finish_write');
    assert.deepEqual(await queryWriteStatus(name), { committedSize: 100 * KiB, complete: false });
    await writeResource(t.client, name, data, { startOffset: 100 * KiB });
    assert.ok((await readResource(t.client, readName(digest))).equals(data));
  });

  it('accepts two uploads that reuse one upload UUID for different blobs', async () => {
    const uuid = randomUUID();
    const [a, b, c, d] = [testBlob(300 * KiB), testBlob(200 * KiB), testBlob(150 * KiB), testBlob(10)];
    await writeResource(t.client, uploadName(a.digest, '', uuid), a.data);
    await writeResource(t.client, uploadName(b.digest, '', uuid), b.data);
    // And concurrently.
    await Promise.all([
      writeResource(t.client, uploadName(c.digest, '', uuid), c.data, { chunkSize: 16 * KiB }),
      writeResource(t.client, uploadName(d.digest, '', uuid), d.data),
    ]);
    for (const blob of [a, b, c, d]) assert.ok((await readResource(t.client, readName(blob.digest))).equals(blob.data));
  });

  it('stores a blob that two calls upload concurrently under the same name', async () => {
    const { data, digest } = testBlob(500 * KiB);
    const name = uploadName(digest);
    const results = await Promise.allSettled([
      writeResource(t.client, name, data, { chunkSize: 32 * KiB }),
      writeResource(t.client, name, data, { chunkSize: 32 * KiB }),
    ]);
    assert.ok(
      results.some((r) => r.status === 'fulfilled'),
      'at least one upload succeeds',
    );
    assert.ok((await readResource(t.client, readName(digest))).equals(data));
  });

  it('reports complete=true from QueryWriteStatus for a stored blob', async () => {
    const { data, digest } = testBlob(5000);
    await writeResource(t.client, uploadName(digest), data);
    assert.deepEqual(await queryWriteStatus(uploadName(digest)), { committedSize: 5000, complete: true });
    assert.deepEqual(await queryWriteStatus(uploadName(digest, 'other/instance')), {
      committedSize: 5000,
      complete: true,
    });
  });
});

describe('ByteStream Read cancellation', () => {
  it('stops reading the blob from storage when the client cancels a long read', async () => {
    const { data, digest } = testBlob(48 * MiB);
    await writeResource(t.client, uploadName(digest), data, { chunkSize: MiB });
    // Watch what the server reads from storage for this blob (whatever the store's signature).
    const store = t.server.cas as unknown as { get: (...args: unknown[]) => Promise<Blob | undefined> };
    const originalGet = store.get;
    let bytesFromStorage = 0;
    let storageReadEnded!: () => void;
    const ended = new Promise<void>((resolve) => {
      storageReadEnded = resolve;
    });
    store.get = async function (this: unknown, ...args: unknown[]) {
      const blob = await originalGet.apply(this, args);
      if (!blob || blob.sizeBytes !== data.length) return blob;
      return {
        sizeBytes: blob.sizeBytes,
        read: async function* (offset?: number, limit?: number) {
          try {
            for await (const chunk of blob.read(offset, limit)) {
              bytesFromStorage += chunk.length;
              yield chunk;
            }
          } finally {
            storageReadEnded();
          }
        },
      };
    };
    try {
      const stream = t.client.byteStream.read({ resourceName: readName(digest), readOffset: 0, readLimit: 0 });
      stream.on('error', () => {});
      await new Promise((resolve) => stream.once('data', resolve));
      stream.cancel();
      await ended;
      assert.ok(
        bytesFromStorage < data.length,
        `the server stopped reading after ${bytesFromStorage} of ${data.length} bytes`,
      );
    } finally {
      store.get = originalGet;
    }
  });
});

describe('ByteStream Read from a disk store, through the pooled read buffers', () => {
  let disk: TestServer;
  let directory: string;
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'granary-bytestream-disk-'));
    disk = await startTestServer(undefined, { cas: { disk: { path: directory, maxSizeBytes: 256 * MiB } } });
  });
  after(async () => {
    await disk.close();
    await rm(directory, { recursive: true, force: true });
  });

  it('returns every byte of concurrent reads, at any read_offset and read_limit, across chunk boundaries', async () => {
    const blobs = [testBlob(5 * MiB + 11), testBlob(3 * MiB), testBlob(2 * MiB - 1)];
    for (const { data, digest } of blobs)
      await writeResource(disk.client, uploadName(digest), data, { chunkSize: MiB });
    const reads: Promise<void>[] = [];
    for (let round = 0; round < 3; round++) {
      for (const { data, digest } of blobs) {
        for (const [offset, limit] of [
          [0, 0],
          [1, 0],
          [MiB - 1, 2],
          [MiB, MiB],
          [7, 2 * MiB + 5],
          [data.length - 3, 0],
        ] as const) {
          reads.push(
            readResource(disk.client, readName(digest), offset, limit).then((read) => {
              const end = limit === 0 ? data.length : offset + limit;
              assert.ok(read.equals(data.subarray(offset, end)), `offset ${offset}, limit ${limit}`);
            }),
          );
        }
      }
    }
    await Promise.all(reads);
  });
});
