/**
 * Helpers for tests of the gRPC services: an in-process server with a real
 * grpc-js client, status assertions and ByteStream transfers.
 */
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { type Connection, connect, fromServiceError } from '../../src/client/connection.js';
import type { WriteRequest, WriteResponse } from '../../src/gen/google/bytestream/bytestream.js';
import { type RunningServer, type StorageServerConfig, startStorageServer } from '../../src/server/storageServer.js';

export interface TestServer {
  server: RunningServer;
  client: Connection;
  close(): Promise<void>;
}

/** An in-process storage server on loopback; `config` adds to or overrides the defaults. */
export async function startTestServer(
  casBytes = 256 * 1024 * 1024,
  config: Partial<StorageServerConfig> = {},
): Promise<TestServer> {
  const server = await startStorageServer({
    listen: '127.0.0.1:0',
    cas: { memory: { maxSizeBytes: casBytes } },
    actionCache: { memory: { maxSizeBytes: 16 * 1024 * 1024 } },
    ...config,
  });
  const client = connect(`grpc://${server.address}`);
  return {
    server,
    client,
    close: async () => {
      client.close();
      await server.close();
    },
  };
}

export function* chunks(data: Buffer, size: number): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

/** Reads a ByteStream resource into memory; failures become StatusErrors. */
export async function readResource(
  client: Connection,
  resourceName: string,
  readOffset = 0,
  readLimit = 0,
): Promise<Buffer> {
  const stream = client.byteStream.read({ resourceName, readOffset, readLimit });
  const parts: Buffer[] = [];
  try {
    for await (const response of stream as AsyncIterable<{ data: Buffer }>) parts.push(response.data);
  } catch (error) {
    throw fromServiceError(error as ServiceError);
  }
  return Buffer.concat(parts);
}

export interface WriteCall {
  /** Sends one request, waiting for the stream to drain when needed. */
  send(request: Partial<WriteRequest>): Promise<void>;
  /** Half-closes the request stream. */
  end(): void;
  cancel(): void;
  /** Settles with the server's response or a StatusError. */
  response: Promise<WriteResponse>;
}

/** Opens a ByteStream Write call. */
export function openWrite(client: Connection): WriteCall {
  let stream!: ReturnType<Connection['byteStream']['write']>;
  const response = new Promise<WriteResponse>((resolve, reject) => {
    stream = client.byteStream.write(new Metadata(), (error, value) => {
      if (error) reject(fromServiceError(error));
      else resolve(value as WriteResponse);
    });
  });
  // Callers often abandon a call on purpose; keep that from becoming an unhandled rejection.
  const settled = response.then(
    () => {},
    () => {},
  );
  stream.on('error', () => {});
  return {
    send: async (request) => {
      const message: WriteRequest = {
        resourceName: '',
        writeOffset: 0,
        finishWrite: false,
        data: Buffer.alloc(0),
        ...request,
      };
      if (stream.write(message)) return;
      // Stop waiting when the server has already ended the call.
      await Promise.race([new Promise((resolve) => stream.once('drain', resolve)), settled]);
    },
    end: () => stream.end(),
    cancel: () => stream.cancel(),
    response,
  };
}

/**
 * Uploads `data` from `startOffset` in chunks of `chunkSize` and finishes the
 * write (unless told not to); returns the server's response.
 */
export async function writeResource(
  client: Connection,
  resourceName: string,
  data: Buffer,
  options: { chunkSize?: number; startOffset?: number; finish?: boolean } = {},
): Promise<WriteResponse> {
  const { chunkSize = 64 * 1024, startOffset = 0, finish = true } = options;
  const call = openWrite(client);
  let offset = startOffset;
  let first = true;
  for (const chunk of chunks(data.subarray(startOffset), chunkSize)) {
    await call.send({ resourceName: first ? resourceName : '', writeOffset: offset, data: chunk });
    first = false;
    offset += chunk.length;
  }
  if (finish) await call.send({ resourceName: first ? resourceName : '', writeOffset: offset, finishWrite: true });
  call.end();
  return call.response;
}
