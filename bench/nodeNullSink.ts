/**
 * The Node null sink: the same do-nothing REAPI server as reapi-load's Go
 * sink (it remembers which digests it was given, not their bytes; answers
 * reads with zeros; finishes every action at once), written on grpc-js, the
 * generated protobuf code and Granary's HTTP/2 tuning, with none of Granary's
 * edge, storage or scheduler. Its CPU per unit of work is what serving the
 * figure costs in Node before Granary does anything, the Node counterpart of
 * the Go sink's "gRPC floor"; the side-by-side benchmark shows both, so the
 * gap between Granary and the Go servers can be split into the runtime's share
 * and Granary's own.
 *
 * Usage: node dist-test/bench/nodeNullSink.js [--listen HOST:PORT]
 * (prints "serving on HOST:PORT").
 */

import { parseArgs } from 'node:util';
import { Server, ServerCredentials, type ServerWritableStream, status } from '@grpc/grpc-js';
import {
  ActionCacheService,
  type ActionResult,
  type BatchReadBlobsRequest,
  BatchReadBlobsResponse_Response,
  type BatchUpdateBlobsRequest,
  CapabilitiesService,
  ContentAddressableStorageService,
  DigestFunction_Value,
  ExecuteResponse,
  ExecutionService,
  type FindMissingBlobsRequest,
  type GetActionResultRequest,
  ServerCapabilities,
  type UpdateActionResultRequest,
} from '../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import { ByteStreamService, type ReadRequest, type WriteRequest } from '../src/gen/google/bytestream/bytestream.js';
import type { Operation } from '../src/gen/google/longrunning/operations.js';
import { DEFAULT_MAXIMUM_MESSAGE_BYTES } from '../src/grpc/server.js';
import { tuneHttp2Server } from '../src/grpc/tuning.js';

const READ_CHUNK_BYTES = 1 << 20;
/** The trivial action's one output (reapi-load's `trivialOutput`), as the empty blob. */
const TRIVIAL_OUTPUT = 'out.txt';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const RESULT_TYPE_URL = 'type.googleapis.com/build.bazel.remote.execution.v2.ExecuteResponse';

type Callback<T> = (error: { code: number; details: string } | null, value?: T) => void;

/** Finds ".../blobs/HASH/SIZE" in a ByteStream resource name. */
export function hashAndSize(name: string): { hash: string; size: number } | undefined {
  const parts = name.split('/');
  for (let i = 0; i + 2 < parts.length; i++) {
    if (parts[i] === 'blobs') {
      const size = Number(parts[i + 2]);
      return Number.isSafeInteger(size) && size >= 0 ? { hash: parts[i + 1] as string, size } : undefined;
    }
  }
  return undefined;
}

/** A grpc-js server with the sink's services added, not yet bound. */
export function createNodeNullSink(): Server {
  const server = new Server({
    'grpc.max_receive_message_length': DEFAULT_MAXIMUM_MESSAGE_BYTES,
    'grpc.max_send_message_length': DEFAULT_MAXIMUM_MESSAGE_BYTES,
  });
  tuneHttp2Server(server);
  const present = new Set<string>();
  const results = new Map<string, ActionResult>();
  const zeros = Buffer.alloc(READ_CHUNK_BYTES);
  const capabilities = ServerCapabilities.fromPartial({
    cacheCapabilities: {
      digestFunctions: [DigestFunction_Value.SHA256],
      actionCacheUpdateCapabilities: { updateEnabled: true },
      maxBatchTotalSizeBytes: 4 << 20,
    },
    executionCapabilities: { digestFunction: DigestFunction_Value.SHA256, execEnabled: true },
    lowApiVersion: { major: 2 },
    highApiVersion: { major: 2, minor: 3 },
  });
  const executeResponse = Buffer.from(
    ExecuteResponse.encode(
      ExecuteResponse.fromPartial({
        result: { outputFiles: [{ path: TRIVIAL_OUTPUT, digest: { hash: EMPTY_SHA256, sizeBytes: 0 } }] },
        status: { code: 0 },
      }),
    ).finish(),
  );

  server.addService(CapabilitiesService, {
    getCapabilities: (_call: unknown, callback: Callback<ServerCapabilities>) => callback(null, capabilities),
  });
  server.addService(ContentAddressableStorageService, {
    findMissingBlobs: (call: { request: FindMissingBlobsRequest }, callback: Callback<unknown>) => {
      callback(null, { missingBlobDigests: call.request.blobDigests.filter((d) => !present.has(d.hash)) });
    },
    batchUpdateBlobs: (call: { request: BatchUpdateBlobsRequest }, callback: Callback<unknown>) => {
      const responses = call.request.requests.map((r) => {
        if (r.digest) present.add(r.digest.hash);
        return { digest: r.digest, status: { code: 0, message: '', details: [] } };
      });
      callback(null, { responses });
    },
    batchReadBlobs: (call: { request: BatchReadBlobsRequest }, callback: Callback<unknown>) => {
      const responses = call.request.digests.map((digest) => {
        const size = Number(digest.sizeBytes);
        const found = present.has(digest.hash) && size <= READ_CHUNK_BYTES;
        return BatchReadBlobsResponse_Response.fromPartial({
          digest,
          data: found ? zeros.subarray(0, size) : Buffer.alloc(0),
          status: { code: found ? 0 : status.NOT_FOUND },
        });
      });
      callback(null, { responses });
    },
    getTree: (call: ServerWritableStream<unknown, unknown>) =>
      call.emit('error', { code: status.UNIMPLEMENTED, details: 'the null sink has no trees' }),
  });
  server.addService(ActionCacheService, {
    getActionResult: (call: { request: GetActionResultRequest }, callback: Callback<ActionResult>) => {
      const result = results.get(call.request.actionDigest?.hash ?? '');
      if (result) callback(null, result);
      else callback({ code: status.NOT_FOUND, details: 'no such action result' });
    },
    updateActionResult: (call: { request: UpdateActionResultRequest }, callback: Callback<ActionResult>) => {
      const result = call.request.actionResult;
      if (!result) return callback({ code: status.INVALID_ARGUMENT, details: 'action_result is missing' });
      results.set(call.request.actionDigest?.hash ?? '', result);
      callback(null, result);
    },
  });
  server.addService(ExecutionService, {
    execute: (call: ServerWritableStream<{ actionDigest?: { hash: string } }, Operation>) => {
      call.write({
        name: `operations/${call.request.actionDigest?.hash ?? ''}`,
        done: true,
        response: { typeUrl: RESULT_TYPE_URL, value: executeResponse },
      } as Operation);
      call.end();
    },
    waitExecution: (call: ServerWritableStream<unknown, Operation>) =>
      call.emit('error', { code: status.NOT_FOUND, details: 'the null sink keeps no operations' }),
  });
  server.addService(ByteStreamService, {
    read: (call: ServerWritableStream<ReadRequest, unknown>) => {
      const blob = hashAndSize(call.request.resourceName);
      if (!blob) {
        call.emit('error', { code: status.INVALID_ARGUMENT, details: 'unrecognised resource name' });
        return;
      }
      let sent = 0;
      // Respects backpressure, as a real server must with 64 MiB to send.
      const pump = () => {
        while (sent < blob.size) {
          const length = Math.min(READ_CHUNK_BYTES, blob.size - sent);
          sent += length;
          if (!call.write({ data: zeros.subarray(0, length) })) return void call.once('drain', pump);
        }
        call.end();
      };
      pump();
    },
    write: (
      call: NodeJS.EventEmitter & { on(event: 'data', listener: (request: WriteRequest) => void): unknown },
      callback: Callback<unknown>,
    ) => {
      let name = '';
      let received = 0;
      let finished = false;
      call.on('data', (request: WriteRequest) => {
        if (name === '') name = request.resourceName;
        received += request.data.length;
        if (request.finishWrite) finished = true;
      });
      call.on('end', () => {
        if (!finished)
          return callback({ code: status.INVALID_ARGUMENT, details: 'the write ended without finish_write' });
        const blob = hashAndSize(name);
        if (blob) present.add(blob.hash);
        callback(null, { committedSize: received });
      });
    },
    queryWriteStatus: (_call: unknown, callback: Callback<unknown>) =>
      callback({ code: status.UNIMPLEMENTED, details: 'the null sink keeps no partial writes' }),
  });
  return server;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { listen: { type: 'string', default: '127.0.0.1:0' } } });
  const server = createNodeNullSink();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(values.listen as string, ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  const host = (values.listen as string).replace(/:\d+$/, '');
  console.log(`serving on ${host}:${port}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
