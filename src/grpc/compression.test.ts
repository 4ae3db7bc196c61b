import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { compressibleData } from '../../test/support/compression.js';
import { chunks, openWrite, readResource, startTestServer, type TestServer } from '../../test/support/grpc.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { connect, unary } from '../client/connection.js';
import {
  compressBuffer,
  decompressBuffer,
  ZstdEncoder,
  zstdAvailable,
  zstdUnavailableReason,
} from '../compression/zstd.js';
import { type Digest, digestOf } from '../digest/digest.js';
import {
  type BatchReadBlobsResponse,
  type BatchUpdateBlobsResponse,
  Compressor_Value,
  type FindMissingBlobsResponse,
  type ServerCapabilities,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { QueryWriteStatusResponse, WriteResponse } from '../gen/google/bytestream/bytestream.js';
import { startStorageServer } from '../server/storageServer.js';
import { Code } from '../util/status.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const skip = zstdAvailable() ? false : `zstd is unavailable: ${zstdUnavailableReason()}`;

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
});

const compressedReadName = (d: Digest, instance = '') =>
  `${instance ? `${instance}/` : ''}compressed-blobs/zstd/${d.hash}/${d.sizeBytes}`;
const compressedUploadName = (d: Digest, instance = '', uuid = randomUUID()) =>
  `${instance ? `${instance}/` : ''}uploads/${uuid}/compressed-blobs/zstd/${d.hash}/${d.sizeBytes}`;

function blob(data: Buffer) {
  return { data, digest: digestOf(data) };
}

async function isMissing(digest: Digest): Promise<boolean> {
  const response = await unary<FindMissingBlobsResponse>((done) =>
    t.client.cas.findMissingBlobs({ instanceName: '', blobDigests: [digest], digestFunction: 0 }, done),
  );
  return response.missingBlobDigests.length > 0;
}

function queryWriteStatus(resourceName: string): Promise<QueryWriteStatusResponse> {
  return unary<QueryWriteStatusResponse>((done) => t.client.byteStream.queryWriteStatus({ resourceName }, done));
}

/** Compresses `data` as a stream fed in 1 MiB pieces, as a client compressing a file would. */
function compressStream(data: Buffer, level = 1): Buffer {
  const encoder = new ZstdEncoder({ level });
  const parts: Buffer[] = [];
  for (const piece of chunks(data, MiB)) parts.push(...encoder.push(piece));
  parts.push(...encoder.end());
  return Buffer.concat(parts);
}

/**
 * Sends a compressed stream as REAPI describes: the first write_offset is the
 * uncompressed `startOffset`, later ones add the compressed bytes sent.
 */
async function writeCompressed(
  resourceName: string,
  compressed: Buffer,
  options: { startOffset?: number; chunkSize?: number; finish?: boolean } = {},
): Promise<WriteResponse> {
  const { startOffset = 0, chunkSize = 64 * KiB, finish = true } = options;
  const call = openWrite(t.client);
  let offset = startOffset;
  let first = true;
  for (const chunk of chunks(compressed, chunkSize)) {
    await call.send({ resourceName: first ? resourceName : '', writeOffset: offset, data: chunk });
    first = false;
    offset += chunk.length;
  }
  if (finish) await call.send({ resourceName: first ? resourceName : '', writeOffset: offset, finishWrite: true });
  call.end();
  return call.response;
}

function batchUpdate(requests: Array<{ digest: Digest; data: Buffer; compressor: Compressor_Value }>) {
  return unary<BatchUpdateBlobsResponse>((done) =>
    t.client.cas.batchUpdateBlobs({ instanceName: '', digestFunction: 0, requests }, done),
  );
}

function batchRead(digests: Digest[], acceptableCompressors: Compressor_Value[]) {
  return unary<BatchReadBlobsResponse>((done) =>
    t.client.cas.batchReadBlobs({ instanceName: '', digests, acceptableCompressors, digestFunction: 0 }, done),
  );
}

describe('zstd compression over gRPC', { skip }, () => {
  it('advertises zstd for ByteStream and for BatchUpdateBlobs', async () => {
    const capabilities = await unary<ServerCapabilities>((done) =>
      t.client.capabilities.getCapabilities({ instanceName: '' }, done),
    );
    assert.deepEqual(capabilities.cacheCapabilities?.supportedCompressors, [Compressor_Value.ZSTD]);
    assert.deepEqual(capabilities.cacheCapabilities?.supportedBatchUpdateCompressors, [Compressor_Value.ZSTD]);
  });

  for (const instance of ['', 'ci/linux']) {
    it(`writes compressed and reads back compressed and plain${instance ? ' under an instance name' : ''}`, async () => {
      const { data, digest } = blob(compressibleData(5 * MiB + 3));
      const compressed = compressStream(data, 3);
      assert.ok(compressed.length < data.length);
      const response = await writeCompressed(compressedUploadName(digest, instance), compressed);
      assert.equal(response.committedSize, compressed.length, 'committed_size counts the compressed bytes');
      assert.equal(await isMissing(digest), false);
      assert.ok((await readResource(t.client, `blobs/${digest.hash}/${digest.sizeBytes}`)).equals(data));
      const read = await readResource(t.client, compressedReadName(digest, instance));
      assert.ok(read.length < data.length, 'the read is compressed');
      assert.ok(decompressBuffer(read, data.length).equals(data));
    });
  }

  it('serves a compressed read from an uncompressed read_offset', async () => {
    const { data, digest } = blob(compressibleData(3 * MiB));
    await writeCompressed(compressedUploadName(digest), compressStream(data));
    for (const offset of [0, 1, MiB + 17, data.length - 1, data.length]) {
      const read = await readResource(t.client, compressedReadName(digest), offset);
      assert.ok(decompressBuffer(read, data.length).equals(data.subarray(offset)), `offset ${offset}`);
    }
    await rejectsWithCode(readResource(t.client, compressedReadName(digest), data.length + 1), Code.OUT_OF_RANGE);
    await rejectsWithCode(readResource(t.client, compressedReadName(digest), 0, 100), Code.INVALID_ARGUMENT);
  });

  it('reads the empty blob and reports a missing one compressed', async () => {
    const empty = digestOf('');
    assert.equal(decompressBuffer(await readResource(t.client, compressedReadName(empty)), 0).length, 0);
    await rejectsWithCode(readResource(t.client, compressedReadName(digestOf('never stored'))), Code.NOT_FOUND);
  });

  it('accepts a plain upload read back compressed, and the reverse', async () => {
    const a = blob(compressibleData(700 * KiB));
    const b = blob(compressibleData(300 * KiB + 1));
    await writeCompressed(compressedUploadName(b.digest), compressStream(b.data));
    const call = openWrite(t.client);
    const name = `uploads/${randomUUID()}/blobs/${a.digest.hash}/${a.digest.sizeBytes}`;
    await call.send({ resourceName: name, writeOffset: 0, data: a.data, finishWrite: true });
    call.end();
    assert.equal((await call.response).committedSize, a.data.length);
    assert.ok(
      decompressBuffer(await readResource(t.client, compressedReadName(a.digest)), a.data.length).equals(a.data),
    );
    assert.ok((await readResource(t.client, `blobs/${b.digest.hash}/${b.digest.sizeBytes}`)).equals(b.data));
  });

  it('ends a compressed write of a stored blob early with committed_size -1', async () => {
    const { data, digest } = blob(compressibleData(2 * MiB));
    const compressed = compressStream(data);
    await writeCompressed(compressedUploadName(digest), compressed);
    const call = openWrite(t.client);
    await call.send({
      resourceName: compressedUploadName(digest),
      writeOffset: 0,
      data: compressed.subarray(0, 64 * KiB),
    });
    assert.equal((await call.response).committedSize, -1);
    call.end();
    const status = await queryWriteStatus(compressedUploadName(digest));
    assert.equal(status.complete, true);
  });

  it('rejects a corrupt compressed stream with INVALID_ARGUMENT and stores nothing', async () => {
    const { data, digest } = blob(compressibleData(MiB));
    const compressed = compressStream(data);
    const garbage = randomBytes(100 * KiB);
    await rejectsWithCode(writeCompressed(compressedUploadName(digest), garbage), Code.INVALID_ARGUMENT, 'garbage');
    const truncated = compressed.subarray(0, compressed.length - 100);
    await rejectsWithCode(writeCompressed(compressedUploadName(digest), truncated), Code.INVALID_ARGUMENT, 'truncated');
    const tampered = Buffer.from(compressed);
    for (let i = 200; i < tampered.length; i += 997) tampered[i] = (tampered[i] as number) ^ 0x41;
    await rejectsWithCode(writeCompressed(compressedUploadName(digest), tampered), Code.INVALID_ARGUMENT, 'tampered');
    const other = compressStream(compressibleData(MiB + 1).subarray(1));
    await rejectsWithCode(writeCompressed(compressedUploadName(digest), other), Code.INVALID_ARGUMENT, 'other data');
    assert.equal(await isMissing(digest), true, 'nothing was stored');
    await rejectsWithCode(readResource(t.client, compressedReadName(digest)), Code.NOT_FOUND);
  });

  it('stops reading a stream that decompresses to more than the declared size', async () => {
    const zeros = Buffer.alloc(MiB);
    const encoder = new ZstdEncoder({ level: 3 });
    const parts: Buffer[] = [];
    for (let i = 0; i < 1024; i++) parts.push(...encoder.push(zeros));
    parts.push(...encoder.end());
    const bomb = Buffer.concat(parts); // 1 GiB of zeros
    const digest = digestOf(Buffer.alloc(1000));
    const started = Date.now();
    const error = await rejectsWithCode(writeCompressed(compressedUploadName(digest), bomb), Code.INVALID_ARGUMENT);
    assert.match(error.message, /more than the 1000 bytes/);
    assert.ok(Date.now() - started < 5000, 'the bomb is not expanded');
    assert.equal(await isMissing(digest), true);
  });

  it('rejects compressed write offsets that do not follow the compressed bytes sent', async () => {
    const { data, digest } = blob(compressibleData(300 * KiB));
    const compressed = compressStream(data);
    const call = openWrite(t.client);
    await call.send({ resourceName: compressedUploadName(digest), writeOffset: 0, data: compressed.subarray(0, 1000) });
    await call.send({ writeOffset: 2000, data: compressed.subarray(1000), finishWrite: true });
    call.end();
    await rejectsWithCode(call.response, Code.INVALID_ARGUMENT);
    assert.equal(await isMissing(digest), true);
  });

  it('resumes a compressed upload from the uncompressed size QueryWriteStatus reports', async () => {
    const { data, digest } = blob(compressibleData(4 * MiB));
    const name = compressedUploadName(digest);
    const compressed = compressStream(data);
    const half = Math.floor(compressed.length / 2);
    const call = openWrite(t.client);
    for (let offset = 0; offset < half; offset += 32 * KiB) {
      const piece = compressed.subarray(offset, Math.min(half, offset + 32 * KiB));
      await call.send({ resourceName: offset === 0 ? name : '', writeOffset: offset, data: piece });
    }
    // Let the server decompress part of it before the call breaks.
    for (let i = 0; (await queryWriteStatus(name)).committedSize < MiB; i++) {
      assert.ok(i < 500, 'the server takes in the first half');
      await sleep(10);
    }
    call.cancel();
    await rejectsWithCode(call.response, Code.CANCELLED);
    const status = await queryWriteStatus(name);
    assert.equal(status.complete, false);
    assert.ok(status.committedSize > 0 && status.committedSize < data.length, `committed ${status.committedSize}`);
    // The client resumes with a new stream of the rest, starting at the uncompressed offset.
    const rest = compressStream(data.subarray(status.committedSize));
    const response = await writeCompressed(name, rest, { startOffset: status.committedSize });
    assert.equal(response.committedSize, status.committedSize + rest.length);
    assert.ok((await readResource(t.client, `blobs/${digest.hash}/${digest.sizeBytes}`)).equals(data));
    assert.equal((await queryWriteStatus(name)).complete, true);
  });

  it('keeps a compressed upload half-closed without finish_write resumable', async () => {
    const { data, digest } = blob(compressibleData(MiB));
    const name = compressedUploadName(digest);
    const compressed = compressStream(data);
    const partial = await writeCompressed(name, compressed.subarray(0, Math.floor(compressed.length / 2)), {
      finish: false,
    });
    assert.equal(await isMissing(digest), true, 'nothing is visible before finish_write');
    const status = await queryWriteStatus(name);
    assert.equal(partial.committedSize, status.committedSize);
    assert.ok(status.committedSize < data.length);
    await writeCompressed(name, compressStream(data.subarray(status.committedSize)), {
      startOffset: status.committedSize,
    });
    assert.ok((await readResource(t.client, `blobs/${digest.hash}/${digest.sizeBytes}`)).equals(data));
  });

  it('stores zstd blobs of BatchUpdateBlobs after verifying them, each on its own', async () => {
    const good = blob(compressibleData(100 * KiB));
    const tiny = blob(Buffer.from('x'));
    const empty = blob(Buffer.alloc(0));
    const wrong = blob(compressibleData(10 * KiB));
    const corrupt = blob(compressibleData(20 * KiB));
    const plain = blob(randomBytes(1000));
    const response = await batchUpdate([
      { digest: good.digest, data: compressBuffer(good.data), compressor: Compressor_Value.ZSTD },
      { digest: tiny.digest, data: compressBuffer(tiny.data), compressor: Compressor_Value.ZSTD },
      { digest: empty.digest, data: compressBuffer(empty.data), compressor: Compressor_Value.ZSTD },
      { digest: wrong.digest, data: compressBuffer(compressibleData(10 * KiB + 1)), compressor: Compressor_Value.ZSTD },
      { digest: corrupt.digest, data: randomBytes(500), compressor: Compressor_Value.ZSTD },
      { digest: plain.digest, data: plain.data, compressor: Compressor_Value.IDENTITY },
    ]);
    assert.deepEqual(
      response.responses.map((r) => Code[r.status?.code ?? 0]),
      ['OK', 'OK', 'OK', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'OK'],
    );
    for (const stored of [good, tiny, plain]) {
      assert.ok(
        (await readResource(t.client, `blobs/${stored.digest.hash}/${stored.digest.sizeBytes}`)).equals(stored.data),
      );
    }
    assert.equal(await isMissing(wrong.digest), true);
    assert.equal(await isMissing(corrupt.digest), true);
  });

  it('compresses BatchReadBlobs responses only for clients that accept zstd, and only when it helps', async () => {
    const text = blob(compressibleData(200 * KiB));
    const noise = blob(randomBytes(4 * KiB));
    const small = blob(Buffer.from('small'));
    await batchUpdate([text, noise, small].map((b) => ({ ...b, compressor: Compressor_Value.IDENTITY })));
    const digests = [text.digest, noise.digest, small.digest, digestOf('absent')];
    const compressed = await batchRead(digests, [Compressor_Value.ZSTD]);
    assert.deepEqual(
      compressed.responses.map((r) => [Compressor_Value[r.compressor], Code[r.status?.code ?? 0]]),
      [
        ['ZSTD', 'OK'],
        ['IDENTITY', 'OK'],
        ['IDENTITY', 'OK'],
        ['IDENTITY', 'NOT_FOUND'],
      ],
    );
    const [first, second, third] = compressed.responses;
    assert.ok(first && decompressBuffer(first.data, text.data.length).equals(text.data));
    assert.ok(second?.data.equals(noise.data));
    assert.ok(third?.data.equals(small.data));
    const plain = await batchRead(digests, []);
    assert.ok(plain.responses.every((r) => r.compressor === Compressor_Value.IDENTITY));
    assert.ok(plain.responses[0]?.data.equals(text.data));
  });
});

describe('a server with compression turned off', () => {
  it('advertises no compressors and refuses compressed transfers', async () => {
    const server = await startStorageServer({
      listen: '127.0.0.1:0',
      cas: { memory: { maxSizeBytes: 16 * MiB } },
      actionCache: { memory: { maxSizeBytes: MiB } },
      compression: false,
    });
    const client = connect(`grpc://${server.address}`);
    try {
      const capabilities = await unary<ServerCapabilities>((done) =>
        client.capabilities.getCapabilities({ instanceName: '' }, done),
      );
      assert.deepEqual(capabilities.cacheCapabilities?.supportedCompressors, []);
      assert.deepEqual(capabilities.cacheCapabilities?.supportedBatchUpdateCompressors, []);
      const { data, digest } = blob(Buffer.from('hello'));
      await rejectsWithCode(readResource(client, compressedReadName(digest)), Code.INVALID_ARGUMENT);
      await rejectsWithCode(
        unary<BatchUpdateBlobsResponse>((done) =>
          client.cas.batchUpdateBlobs(
            { instanceName: '', digestFunction: 0, requests: [{ digest, data, compressor: Compressor_Value.ZSTD }] },
            done,
          ),
        ),
        Code.INVALID_ARGUMENT,
      );
    } finally {
      client.close();
      await server.close();
    }
  });
});
