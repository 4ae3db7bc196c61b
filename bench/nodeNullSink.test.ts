import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { credentials, type Server, ServerCredentials, status } from '@grpc/grpc-js';
import {
  ActionCacheClient,
  BatchReadBlobsRequest,
  BatchUpdateBlobsRequest,
  ContentAddressableStorageClient,
  ExecuteRequest,
  ExecuteResponse,
  ExecutionClient,
  FindMissingBlobsRequest,
  GetActionResultRequest,
  UpdateActionResultRequest,
} from '../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import { ByteStreamClient, ReadRequest, WriteRequest } from '../src/gen/google/bytestream/bytestream.js';
import type { Operation } from '../src/gen/google/longrunning/operations.js';
import { createNodeNullSink, hashAndSize } from './nodeNullSink.js';

type Unary = (request: unknown, callback: (error: Error | null, response: unknown) => void) => void;
function call<T>(client: object, method: string, request: unknown): Promise<T> {
  return new Promise((resolve, reject) =>
    ((client as Record<string, Unary>)[method] as Unary).call(client, request, (error, response) =>
      error ? reject(error) : resolve(response as T),
    ),
  );
}

const digest = (hash: string, sizeBytes: number) => ({ hash: hash.padEnd(64, '0'), sizeBytes });

describe('the Node null sink', () => {
  let server: Server;
  let address: string;
  before(async () => {
    server = createNodeNullSink();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    address = `127.0.0.1:${port}`;
  });
  after(() => server.forceShutdown());

  it('reports missing only the digests it was not given, and reads zeros of their size', async () => {
    const cas = new ContentAddressableStorageClient(address, credentials.createInsecure());
    try {
      await call(
        cas,
        'batchUpdateBlobs',
        BatchUpdateBlobsRequest.fromPartial({
          instanceName: '',
          requests: [{ digest: digest('a', 3), data: Buffer.from('abc') }],
        }),
      );
      const missing = await call<{ missingBlobDigests: Array<{ hash: string }> }>(
        cas,
        'findMissingBlobs',
        FindMissingBlobsRequest.fromPartial({ blobDigests: [digest('a', 3), digest('b', 3)] }),
      );
      assert.deepEqual(
        missing.missingBlobDigests.map((d) => d.hash[0]),
        ['b'],
      );
      const read = await call<{ responses: Array<{ data: Buffer; status?: { code: number } }> }>(
        cas,
        'batchReadBlobs',
        BatchReadBlobsRequest.fromPartial({ digests: [digest('a', 3), digest('b', 3)] }),
      );
      assert.deepEqual([...(read.responses[0]?.data ?? [])], [0, 0, 0]);
      assert.equal(read.responses[1]?.status?.code, status.NOT_FOUND);
    } finally {
      cas.close();
    }
  });

  it('streams a read in chunks of at most 1 MiB that add up to the size named', async () => {
    const byteStream = new ByteStreamClient(address, credentials.createInsecure());
    try {
      const sizes: number[] = [];
      await new Promise<void>((resolve, reject) => {
        const stream = byteStream.read(
          ReadRequest.fromPartial({ resourceName: `blobs/${'c'.repeat(64)}/${3 * 1024 * 1024 + 5}` }),
        );
        stream.on('data', (response: { data: Buffer }) => sizes.push(response.data.length));
        stream.on('end', () => resolve());
        stream.on('error', reject);
      });
      assert.equal(
        sizes.reduce((a, b) => a + b, 0),
        3 * 1024 * 1024 + 5,
      );
      assert.ok(sizes.every((size) => size <= 1024 * 1024));
    } finally {
      byteStream.close();
    }
  });

  it('refuses a write without finish_write and remembers a finished one', async () => {
    const byteStream = new ByteStreamClient(address, credentials.createInsecure());
    const cas = new ContentAddressableStorageClient(address, credentials.createInsecure());
    const write = (finishWrite: boolean, hash: string) =>
      new Promise<{ committedSize: number }>((resolve, reject) => {
        const stream = byteStream.write((error, response) => (error ? reject(error) : resolve(response)));
        stream.write(
          WriteRequest.fromPartial({
            resourceName: `uploads/u/blobs/${hash}/4`,
            finishWrite,
            data: Buffer.from('data'),
          }),
        );
        stream.end();
      });
    try {
      await assert.rejects(
        write(false, 'd'.repeat(64)),
        (error: { code?: number }) => error.code === status.INVALID_ARGUMENT,
      );
      assert.equal(Number((await write(true, 'e'.repeat(64))).committedSize), 4);
      const missing = await call<{ missingBlobDigests: unknown[] }>(
        cas,
        'findMissingBlobs',
        FindMissingBlobsRequest.fromPartial({ blobDigests: [{ hash: 'e'.repeat(64), sizeBytes: 4 }] }),
      );
      assert.equal(missing.missingBlobDigests.length, 0);
    } finally {
      byteStream.close();
      cas.close();
    }
  });

  it('serves an action result only after it was stored, and finishes an execution at once', async () => {
    const cache = new ActionCacheClient(address, credentials.createInsecure());
    const execution = new ExecutionClient(address, credentials.createInsecure());
    try {
      const actionDigest = digest('f', 10);
      await assert.rejects(
        call(cache, 'getActionResult', GetActionResultRequest.fromPartial({ actionDigest })),
        (error: { code?: number }) => error.code === status.NOT_FOUND,
      );
      await call(
        cache,
        'updateActionResult',
        UpdateActionResultRequest.fromPartial({ actionDigest, actionResult: { exitCode: 7 } }),
      );
      assert.equal(
        (
          await call<{ exitCode: number }>(
            cache,
            'getActionResult',
            GetActionResultRequest.fromPartial({ actionDigest }),
          )
        ).exitCode,
        7,
      );
      const operations: Operation[] = [];
      await new Promise<void>((resolve, reject) => {
        const stream = execution.execute(ExecuteRequest.fromPartial({ actionDigest }));
        stream.on('data', (operation: Operation) => operations.push(operation));
        stream.on('end', () => resolve());
        stream.on('error', reject);
      });
      assert.equal(operations.length, 1);
      assert.equal(operations[0]?.done, true);
      const response = ExecuteResponse.decode(operations[0]?.response?.value ?? Buffer.alloc(0));
      assert.equal(response.result?.outputFiles[0]?.path, 'out.txt');
    } finally {
      cache.close();
      execution.close();
    }
  });

  it('finds the hash and size in upload and download resource names', () => {
    assert.deepEqual(hashAndSize('inst/uploads/u1/blobs/abc/12'), { hash: 'abc', size: 12 });
    assert.deepEqual(hashAndSize('blobs/abc/0'), { hash: 'abc', size: 0 });
    assert.equal(hashAndSize('blobs/abc/x'), undefined);
    assert.equal(hashAndSize('nothing/here'), undefined);
  });
});
