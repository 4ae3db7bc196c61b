/**
 * A real `granary serve` process under a few thousand malformed or dishonest
 * requests of every kind: each must fail with the status the specification (or
 * gRPC, for undecodable messages) prescribes, none of the bad data may become
 * visible, and the server must keep serving good requests without crashing.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Client, Metadata, type ServiceError } from '@grpc/grpc-js';
import { type Connection, unary } from '../../src/client/connection.js';
import { type Digest, digestKey, digestOf, SHA256 } from '../../src/digest/digest.js';
import {
  ActionResult,
  type BatchReadBlobsResponse,
  type BatchUpdateBlobsResponse,
  type FindMissingBlobsResponse,
  type GetTreeResponse,
  type ServerCapabilities,
} from '../../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { QueryWriteStatusResponse } from '../../src/gen/google/bytestream/bytestream.js';
import { dial } from '../../src/grpc/dial.js';
import { Code, StatusError } from '../../src/util/status.js';
import { useFarm } from '../support/farm.js';
import { openWrite, readResource, writeResource } from '../support/grpc.js';
import { rejectsWithCode } from '../support/status.js';

const CONCURRENCY = 32;
const REAPI = '/build.bazel.remote.execution.v2';
const METHODS = {
  findMissing: `${REAPI}.ContentAddressableStorage/FindMissingBlobs`,
  batchUpdate: `${REAPI}.ContentAddressableStorage/BatchUpdateBlobs`,
  batchRead: `${REAPI}.ContentAddressableStorage/BatchReadBlobs`,
  getTree: `${REAPI}.ContentAddressableStorage/GetTree`,
  getActionResult: `${REAPI}.ActionCache/GetActionResult`,
  updateActionResult: `${REAPI}.ActionCache/UpdateActionResult`,
  capabilities: `${REAPI}.Capabilities/GetCapabilities`,
  read: '/google.bytestream.ByteStream/Read',
  write: '/google.bytestream.ByteStream/Write',
  queryWriteStatus: '/google.bytestream.ByteStream/QueryWriteStatus',
};

const hex = (length: number) =>
  randomBytes(Math.ceil(length / 2))
    .toString('hex')
    .slice(0, length);
const randomDigest = (size = 1 + Math.floor(Math.random() * 1000)): Digest => ({ hash: hex(64), sizeBytes: size });

/** Digests that are not valid SHA256 digests, each freshly randomised. */
const malformedDigestMakers: Array<() => Digest> = [
  () => ({ hash: 'z'.repeat(64), sizeBytes: 1 }),
  () => ({ hash: `${hex(63)}g`, sizeBytes: 10 }),
  () => ({
    hash: hex(64)
      .toUpperCase()
      .replace(/^[0-9]/, 'A'),
    sizeBytes: 10,
  }),
  () => ({ hash: hex(63), sizeBytes: 10 }),
  () => ({ hash: hex(65), sizeBytes: 10 }),
  () => ({ hash: hex(100), sizeBytes: 10 }),
  () => ({ hash: '', sizeBytes: 0 }),
  () => ({ hash: hex(64), sizeBytes: -1 }),
  () => ({ hash: hex(64), sizeBytes: -(2 ** 40) }),
  () => ({ hash: `${hex(60)} \n\t`, sizeBytes: 4 }),
  () => ({ hash: '../../../../etc/passwd'.padEnd(64, 'a'), sizeBytes: 4 }),
];
const malformedDigest = (i: number) => (malformedDigestMakers[i % malformedDigestMakers.length] as () => Digest)();

/** Read resource names that must be rejected as INVALID_ARGUMENT. */
const badReadNameMakers: Array<() => string> = [
  () => '',
  () => 'blobs',
  () => `blobs/${hex(64)}`,
  () => `blobs/${hex(64)}/`,
  () => `blobs/${hex(64)}/abc`,
  () => `blobs/${hex(64)}/-1`,
  () => `blobs/${hex(64)}/1.5`,
  () => `blobs/${hex(64)}/0x10`,
  () => `blobs/${hex(64)}/99999999999999999999`,
  () => `blobs/${'x'.repeat(64)}/10`,
  () => `blobs/${hex(63)}/10`,
  () => `blobs/${hex(66)}/10`,
  () => `blobs/${hex(64)}/10/trailing`,
  () => `blobs/blake3/${hex(64)}/10`,
  () => `blobs/sha512/${hex(64)}/10`,
  () => `compressed-blobs/brotli/${hex(64)}/10`,
  () => `compressed-blobs/identity/${hex(64)}/10`,
  () => `uploads/blobs/${hex(64)}/10`,
  () => `a//blobs/${hex(64)}/10`,
  () => `/blobs/${hex(64)}/10`,
  () => `instance/uploads/${randomUUID()}/blobs/${hex(64)}/10`,
  () => `nothing-here/${hex(64)}/10`,
  () => `blobs/${'\u00ff'.repeat(64)}/10`,
];
/** Write resource names that must be rejected as INVALID_ARGUMENT. */
const badWriteNameMakers: Array<() => string> = [
  () => '',
  () => `blobs/${hex(64)}/10`,
  () => `uploads/${randomUUID()}`,
  () => `uploads//blobs/${hex(64)}/10`,
  () => `uploads/${randomUUID()}/blobs/${hex(64)}`,
  () => `uploads/${randomUUID()}/blobs/${hex(64)}/x`,
  () => `uploads/${randomUUID()}/blobs/${hex(64)}/-3`,
  () => `uploads/${randomUUID()}/blobs/${'q'.repeat(64)}/3`,
  () => `uploads/${randomUUID()}/blobs/${hex(62)}/3`,
  () => `uploads/${randomUUID()}/blobs/blake3/${hex(64)}/3`,
  () => `uploads/${randomUUID()}/compressed-blobs/brotli/${hex(64)}/3`,
  () => `blobs/uploads/${randomUUID()}/blobs/${hex(64)}/3`,
  () => `x//uploads/${randomUUID()}/blobs/${hex(64)}/3`,
];
const pick = <T>(makers: Array<() => T>, i: number): T => (makers[i % makers.length] as () => T)();

/** Bytes that no protobuf parser accepts: field 1, length-delimited, with a length far past the end. */
const UNDECODABLE = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
/** A Digest message whose size_bytes is 2^63 - 1, more than a JavaScript number holds exactly. */
function hugeSizeDigestMessage(): Buffer {
  const hash = Buffer.from(hex(64));
  const varint = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
  return Buffer.concat([Buffer.from([0x0a, hash.length]), hash, Buffer.from([0x10]), varint]);
}
/** FindMissingBlobsRequest { blob_digests: [that digest] }. */
function hugeSizeFindMissingRequest(): Buffer {
  const digest = hugeSizeDigestMessage();
  return Buffer.concat([Buffer.from([0x12, digest.length]), digest]);
}

interface Case {
  kind: string;
  run(): Promise<void>;
}

describe('granary serve under a flood of bad requests', { timeout: 120_000 }, () => {
  const farm = useFarm({ name: 'bad-input' });
  let client: Connection;
  let raw: Client;
  /** Well-formed digests of data that was sent dishonestly; none may become visible. */
  const mustStayMissing: Digest[] = [];

  before(() => {
    client = farm.connect();
    raw = dial(farm.url).client(Client);
  });

  after(() => {
    raw?.close();
  });

  const findMissing = (blobDigests: Digest[], digestFunction = 0) =>
    unary<FindMissingBlobsResponse>((done) =>
      client.cas.findMissingBlobs({ instanceName: '', blobDigests, digestFunction }, done),
    );
  const batchUpdate = (requests: Array<{ digest: Digest; data: Buffer }>, digestFunction = 0) =>
    unary<BatchUpdateBlobsResponse>((done) =>
      client.cas.batchUpdateBlobs(
        { instanceName: '', digestFunction, requests: requests.map((r) => ({ ...r, compressor: 0 })) },
        done,
      ),
    );
  const batchRead = (digests: Digest[], digestFunction = 0) =>
    unary<BatchReadBlobsResponse>((done) =>
      client.cas.batchReadBlobs({ instanceName: '', digests, acceptableCompressors: [], digestFunction }, done),
    );
  const queryWriteStatus = (resourceName: string) =>
    unary<QueryWriteStatusResponse>((done) => client.byteStream.queryWriteStatus({ resourceName }, done));
  const getTree = (rootDigest: Digest, pageToken = '') =>
    new Promise<void>((resolve, reject) => {
      const stream = client.cas.getTree({ instanceName: '', rootDigest, pageSize: 0, pageToken, digestFunction: 0 });
      stream.on('data', (_: GetTreeResponse) => {});
      stream.on('end', () => resolve());
      stream.on('error', (e: ServiceError) => reject(new StatusError(e.code as number, e.details)));
    });
  const getActionResult = (actionDigest: Digest, digestFunction = 0) =>
    unary<ActionResult>((done) =>
      client.actionCache.getActionResult(
        {
          instanceName: '',
          actionDigest,
          inlineStdout: true,
          inlineStderr: false,
          inlineOutputFiles: [],
          digestFunction,
        },
        done,
      ),
    );
  const updateActionResult = (actionDigest: Digest | undefined, actionResult: ActionResult, digestFunction = 0) =>
    unary<ActionResult>((done) =>
      client.actionCache.updateActionResult(
        { instanceName: '', actionDigest, actionResult, resultsCachePolicy: undefined, digestFunction },
        done,
      ),
    );

  /** Sends raw bytes as the request of a unary method, bypassing the protobuf encoder. */
  const rawUnary = (method: string, bytes: Buffer) =>
    new Promise<Buffer>((resolve, reject) => {
      raw.makeUnaryRequest(
        method,
        (b: Buffer) => b,
        (b: Buffer) => b,
        bytes,
        (error: ServiceError | null, response?: Buffer) =>
          error ? reject(new StatusError(error.code as number, error.details)) : resolve(response as Buffer),
      );
    });
  const rawRead = (bytes: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const stream = raw.makeServerStreamRequest(
        METHODS.read,
        (b: Buffer) => b,
        (b: Buffer) => b,
        bytes,
      );
      stream.on('data', () => {});
      stream.on('end', () => resolve());
      stream.on('error', (e: ServiceError) => reject(new StatusError(e.code as number, e.details)));
    });
  const rawWrite = (messages: Buffer[]) =>
    new Promise<Buffer>((resolve, reject) => {
      const stream = raw.makeClientStreamRequest(
        METHODS.write,
        (b: Buffer) => b,
        (b: Buffer) => b,
        new Metadata(),
        (error: ServiceError | null, response?: Buffer) =>
          error ? reject(new StatusError(error.code as number, error.details)) : resolve(response as Buffer),
      );
      stream.on('error', () => {});
      for (const message of messages) stream.write(message);
      stream.end();
    });

  /** A well-formed upload of data that does not match its digest in the way `how` says. */
  const dishonestUpload = async (how: 'hash' | 'short' | 'long' | 'skip' | 'late-start', size: number) => {
    const data = randomBytes(size);
    const digest = how === 'hash' ? { hash: hex(64), sizeBytes: size } : digestOf(data);
    mustStayMissing.push(digest);
    const name = `uploads/${randomUUID()}/blobs/${digest.hash}/${digest.sizeBytes}`;
    if (how === 'short')
      return writeResource(client, name, data.subarray(0, size - 1 - Math.floor(Math.random() * (size - 1))));
    if (how === 'long')
      return writeResource(client, name, Buffer.concat([data, randomBytes(1 + Math.floor(Math.random() * 100))]));
    if (how === 'late-start')
      return writeResource(client, name, data, { startOffset: 1 + Math.floor(Math.random() * (size - 1)) });
    if (how === 'skip') {
      const call = openWrite(client);
      const cut = Math.floor(size / 3);
      await call.send({ resourceName: name, writeOffset: 0, data: data.subarray(0, cut) });
      await call.send({
        writeOffset: cut + 1 + Math.floor(Math.random() * cut),
        data: data.subarray(2 * cut),
        finishWrite: true,
      });
      call.end();
      return call.response;
    }
    return writeResource(client, name, data, { chunkSize: 16 * 1024 });
  };

  function makeCases(count: number): Case[] {
    const makers: Array<(i: number) => Case> = [
      (i) => ({
        kind: 'FindMissingBlobs with a malformed digest',
        run: () => expectCode(findMissing([randomDigest(), malformedDigest(i)]), Code.INVALID_ARGUMENT),
      }),
      (i) => ({
        kind: 'FindMissingBlobs with an unsupported digest function',
        run: () => expectCode(findMissing([randomDigest()], [4, 7, 8, 9, 77][i % 5] as number), Code.INVALID_ARGUMENT),
      }),
      (i) => ({
        kind: 'BatchReadBlobs with a malformed digest',
        run: () => expectCode(batchRead([malformedDigest(i)]), Code.INVALID_ARGUMENT),
      }),
      () => ({
        kind: 'BatchReadBlobs for more than the batch limit',
        run: () =>
          expectCode(batchRead([randomDigest(2 ** (23 + Math.floor(Math.random() * 30)))]), Code.INVALID_ARGUMENT),
      }),
      () => ({
        kind: 'BatchReadBlobs with an unsupported digest function',
        run: () => expectCode(batchRead([randomDigest()], 9), Code.INVALID_ARGUMENT),
      }),
      () => ({
        kind: 'BatchReadBlobs of absent blobs',
        run: async () => {
          const response = await batchRead([randomDigest(), randomDigest()]);
          assert.deepEqual(
            response.responses.map((r) => r.status?.code),
            [Code.NOT_FOUND, Code.NOT_FOUND],
          );
        },
      }),
      (i) => ({
        kind: 'BatchUpdateBlobs with data that does not match the digest',
        run: async () => {
          const size = 1 + (i % 2000);
          const claimed = { hash: hex(64), sizeBytes: size };
          const shortData = randomBytes(size);
          const sized = digestOf(randomBytes(size));
          const wrongLength = { digest: sized, data: randomBytes(size + 1) };
          mustStayMissing.push(claimed, sized);
          const response = await batchUpdate([{ digest: claimed, data: shortData }, wrongLength]);
          assert.deepEqual(
            response.responses.map((r) => r.status?.code),
            [Code.INVALID_ARGUMENT, Code.INVALID_ARGUMENT],
          );
        },
      }),
      (i) => ({
        kind: 'BatchUpdateBlobs with a malformed digest',
        run: async () => {
          const response = await batchUpdate([{ digest: malformedDigest(i), data: Buffer.from('xyz') }]);
          assert.equal(response.responses[0]?.status?.code, Code.INVALID_ARGUMENT);
        },
      }),
      () => ({
        kind: 'BatchUpdateBlobs with an unsupported digest function',
        run: () => expectCode(batchUpdate([blobOf('bad fn')], 9), Code.INVALID_ARGUMENT),
      }),
      (i) => ({
        kind: 'GetTree with a malformed root digest',
        run: () => expectCode(getTree(malformedDigest(i)), Code.INVALID_ARGUMENT),
      }),
      () => ({ kind: 'GetTree of a missing root', run: () => expectCode(getTree(randomDigest()), Code.NOT_FOUND) }),
      () => ({
        kind: 'GetTree with a garbage page token',
        run: () => expectCode(getTree(digestOf(''), `tok-${hex(8)}`), Code.INVALID_ARGUMENT),
      }),
      (i) => ({
        kind: 'GetActionResult with a malformed digest',
        run: () => expectCode(getActionResult(malformedDigest(i)), Code.INVALID_ARGUMENT),
      }),
      () => ({
        kind: 'GetActionResult with an unsupported digest function',
        run: () => expectCode(getActionResult(randomDigest(), 9), Code.INVALID_ARGUMENT),
      }),
      () => ({
        kind: 'GetActionResult of an unknown action',
        run: () => expectCode(getActionResult(randomDigest()), Code.NOT_FOUND),
      }),
      (i) => ({
        kind: 'UpdateActionResult with a malformed action digest',
        run: () =>
          expectCode(updateActionResult(malformedDigest(i), ActionResult.fromPartial({})), Code.INVALID_ARGUMENT),
      }),
      (i) => ({
        kind: 'UpdateActionResult with a malformed output digest',
        run: () =>
          expectCode(
            updateActionResult(
              randomDigest(),
              ActionResult.fromPartial({ outputFiles: [{ path: 'out', digest: malformedDigest(i) }] }),
            ),
            Code.INVALID_ARGUMENT,
          ),
      }),
      (i) => ({
        kind: 'ByteStream Read of a malformed name',
        run: () => expectCode(readResource(client, pick(badReadNameMakers, i)), Code.INVALID_ARGUMENT),
      }),
      () => ({
        kind: 'ByteStream Read of an absent blob',
        run: () =>
          expectCode(readResource(client, `blobs/${hex(64)}/${1 + Math.floor(Math.random() * 1e6)}`), Code.NOT_FOUND),
      }),
      () => ({
        kind: 'ByteStream Read past the end',
        run: () =>
          expectCode(
            readResource(
              client,
              `blobs/${good.digest.hash}/${good.digest.sizeBytes}`,
              good.digest.sizeBytes + 1 + Math.floor(Math.random() * 1e9),
            ),
            Code.OUT_OF_RANGE,
          ),
      }),
      () => ({
        kind: 'ByteStream Read with a negative offset',
        run: () =>
          expectCode(readResource(client, `blobs/${good.digest.hash}/${good.digest.sizeBytes}`, -1), Code.OUT_OF_RANGE),
      }),
      (i) => ({
        kind: 'ByteStream Write to a malformed name',
        run: () =>
          expectCode(writeResource(client, pick(badWriteNameMakers, i), randomBytes(3)), Code.INVALID_ARGUMENT),
      }),
      (i) => ({
        kind: 'QueryWriteStatus of a malformed name',
        run: () => expectCode(queryWriteStatus(pick(badWriteNameMakers, i)), Code.INVALID_ARGUMENT),
      }),
      (i) => ({
        kind: 'ByteStream Write of data that does not match the hash',
        run: () => expectCode(dishonestUpload('hash', 1 + (i % 5000)), Code.INVALID_ARGUMENT),
      }),
      (i) => ({
        kind: 'ByteStream Write finishing short of the size',
        run: () => expectCode(dishonestUpload('short', 2 + (i % 5000)), Code.INVALID_ARGUMENT),
      }),
      (i) => ({
        kind: 'ByteStream Write of more than the size',
        run: () => expectCode(dishonestUpload('long', 1 + (i % 5000)), Code.INVALID_ARGUMENT),
      }),
      (i) => ({
        kind: 'ByteStream Write skipping ahead',
        run: () => expectCode(dishonestUpload('skip', 30 + (i % 5000)), Code.INVALID_ARGUMENT),
      }),
      (i) => ({
        kind: 'ByteStream Write starting past zero',
        run: () => expectCode(dishonestUpload('late-start', 2 + (i % 5000)), Code.INVALID_ARGUMENT),
      }),
      () => ({
        kind: 'ByteStream Write of a few bytes for a huge declared size',
        run: async () => {
          const digest = { hash: hex(64), sizeBytes: Number.MAX_SAFE_INTEGER - Math.floor(Math.random() * 1000) };
          mustStayMissing.push(digest);
          await expectCode(
            writeResource(client, `uploads/${randomUUID()}/blobs/${digest.hash}/${digest.sizeBytes}`, randomBytes(100)),
            Code.INVALID_ARGUMENT,
          );
        },
      }),
      () => ({
        kind: 'ByteStream Write without a resource name',
        run: async () => {
          const call = openWrite(client);
          await call.send({ data: randomBytes(10), finishWrite: true });
          call.end();
          await expectCode(call.response, Code.INVALID_ARGUMENT);
        },
      }),
      () => ({
        kind: 'ByteStream Write with no request at all',
        run: () => expectCode(rawWrite([]), Code.INVALID_ARGUMENT),
      }),
      (i) => ({
        kind: 'undecodable bytes as a unary request',
        run: () => {
          const methods = [
            METHODS.findMissing,
            METHODS.batchUpdate,
            METHODS.batchRead,
            METHODS.getActionResult,
            METHODS.updateActionResult,
            METHODS.queryWriteStatus,
            METHODS.capabilities,
          ];
          // gRPC implementations answer INTERNAL when a request cannot be parsed.
          return expectCode(rawUnary(methods[i % methods.length] as string, UNDECODABLE), Code.INTERNAL);
        },
      }),
      () => ({
        kind: 'undecodable bytes as a Read request',
        run: () => expectCode(rawRead(UNDECODABLE), Code.INTERNAL),
      }),
      () => ({
        kind: 'undecodable bytes as a Write request',
        run: () => expectCode(rawWrite([UNDECODABLE]), Code.INTERNAL),
      }),
      () => ({
        kind: 'a size beyond 2^53 in a raw digest',
        run: () => expectCode(rawUnary(METHODS.findMissing, hugeSizeFindMissingRequest()), Code.INTERNAL),
      }),
      () => ({
        kind: 'random bytes as a request',
        run: async () => {
          const methods = Object.values(METHODS).filter(
            (m) => m !== METHODS.read && m !== METHODS.write && m !== METHODS.getTree,
          );
          const method = methods[Math.floor(Math.random() * methods.length)] as string;
          try {
            await rawUnary(method, randomBytes(Math.floor(Math.random() * 300)));
          } catch (error) {
            // Whatever random bytes decode to, the answer is a proper status, never a crash.
            assert.ok(error instanceof StatusError);
            assert.ok(
              [Code.INVALID_ARGUMENT, Code.INTERNAL, Code.NOT_FOUND, Code.OUT_OF_RANGE].includes(error.code),
              `${method}: ${Code[error.code]} ${error.message}`,
            );
          }
        },
      }),
    ];
    const cases: Case[] = [];
    for (let i = 0; i < count; i++)
      cases.push((makers[i % makers.length] as (i: number) => Case)(Math.floor(i / makers.length)));
    // A few batches over the limit (each carries more than 4 MiB, so only a handful).
    for (let i = 0; i < 6; i++) {
      cases.push({
        kind: 'BatchUpdateBlobs over max_batch_total_size_bytes',
        run: async () => {
          const items = [
            blobOf(randomBytes(2 * 1024 * 1024)),
            blobOf(randomBytes(2 * 1024 * 1024)),
            blobOf(randomBytes(1 + i)),
          ];
          mustStayMissing.push(...items.map((item) => item.digest));
          await expectCode(batchUpdate(items), Code.INVALID_ARGUMENT);
        },
      });
    }
    // And a few dishonest uploads big enough to spill to disk.
    for (const how of ['hash', 'short', 'skip'] as const) {
      cases.push({
        kind: `large ByteStream Write (${how})`,
        run: () => expectCode(dishonestUpload(how, 3 * 1024 * 1024), Code.INVALID_ARGUMENT),
      });
    }
    return cases;
  }

  /** A blob stored before the flood, used for range errors and checked afterwards. */
  const good = blobOf(randomBytes(300 * 1024));

  test('rejects thousands of bad requests with the prescribed codes and keeps serving good ones', async () => {
    await writeResource(
      client,
      `uploads/${randomUUID()}/blobs/${good.digest.hash}/${good.digest.sizeBytes}`,
      good.data,
    );

    const cases = makeCases(3000);
    const failures: string[] = [];
    const counts = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++] as Case;
        counts.set(c.kind, (counts.get(c.kind) ?? 0) + 1);
        try {
          await c.run();
        } catch (error) {
          failures.push(`${c.kind}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    assert.deepEqual(
      failures.slice(0, 20),
      [],
      `${failures.length} of ${cases.length} bad requests were answered wrongly`,
    );
    assert.ok(counts.size >= 35, `${counts.size} kinds of bad requests`);
    assert.equal(farm.server.process.exitCode, null, `the server is still running:\n${farm.server.output()}`);
    assert.equal(farm.server.process.signalCode, null);

    // Good requests still work.
    const capabilities = await unary<ServerCapabilities>((done) =>
      client.capabilities.getCapabilities({ instanceName: '' }, done),
    );
    assert.ok(capabilities.cacheCapabilities?.digestFunctions.length);
    const big = blobOf(randomBytes(3 * 1024 * 1024 + 11));
    const small = Array.from({ length: 10 }, (_, i) => blobOf(`small blob ${i} ${randomUUID()}`));
    const response = await writeResource(
      client,
      `uploads/${randomUUID()}/blobs/${big.digest.hash}/${big.digest.sizeBytes}`,
      big.data,
    );
    assert.equal(response.committedSize, big.data.length);
    const updated = await batchUpdate(small);
    assert.ok(updated.responses.every((r) => r.status?.code === Code.OK));
    assert.ok((await readResource(client, `blobs/${big.digest.hash}/${big.digest.sizeBytes}`)).equals(big.data));
    assert.ok((await readResource(client, `blobs/${good.digest.hash}/${good.digest.sizeBytes}`)).equals(good.data));
    const read = await batchRead(small.map((s) => s.digest));
    assert.deepEqual(
      read.responses.map((r) => r.data.toString()),
      small.map((s) => s.data.toString()),
    );
    const goodDigests = [good.digest, big.digest, ...small.map((s) => s.digest)];
    assert.deepEqual((await findMissing(goodDigests)).missingBlobDigests, []);

    // None of the dishonest data became visible.
    assert.ok(mustStayMissing.length > 500, `${mustStayMissing.length} dishonest blobs`);
    const stillMissing = new Set<string>();
    for (let i = 0; i < mustStayMissing.length; i += 1000) {
      const slice = mustStayMissing.slice(i, i + 1000);
      for (const d of (await findMissing(slice)).missingBlobDigests) stillMissing.add(digestKey(d));
    }
    const visible = mustStayMissing.filter((d) => !stillMissing.has(digestKey(d)));
    assert.deepEqual(visible, [], 'no blob sent with wrong data is stored');
    for (const d of mustStayMissing.slice(0, 50)) {
      if (d.sizeBytes <= 4 * 1024 * 1024) {
        const r = await batchRead([d]);
        assert.equal(r.responses[0]?.status?.code, Code.NOT_FOUND);
      }
    }

    assert.deepEqual(readdirSync(farm.path('data', 'cas', 'tmp')), [], 'no partial upload is left behind');
    assert.equal(farm.server.process.exitCode, null, `the server is still running:\n${farm.server.output()}`);
    assert.doesNotMatch(farm.server.output(), /unhandled|uncaught|TypeError|ReferenceError/i);
  });

  test('stops cleanly afterwards', async () => {
    assert.equal(await farm.stopServer(), 0, farm.server.output());
  });
});

function blobOf(data: string | Buffer): { digest: Digest; data: Buffer } {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return { digest: { hash: SHA256.createHasher().update(bytes).digest('hex'), sizeBytes: bytes.length }, data: bytes };
}

async function expectCode(promise: Promise<unknown>, code: Code): Promise<void> {
  await rejectsWithCode(promise, code);
}
