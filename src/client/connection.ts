/**
 * A connection to a REAPI server: one channel shared by typed clients for each
 * service, plus promise wrappers for unary calls. Used by the CLI, the worker,
 * benchmarks and tests.
 */
import type { ServiceError } from '@grpc/grpc-js';
import {
  ActionCacheClient,
  CapabilitiesClient,
  ContentAddressableStorageClient,
  ExecutionClient,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { ByteStreamClient } from '../gen/google/bytestream/bytestream.js';
import { OperationsClient } from '../gen/google/longrunning/operations.js';
import { type DialedChannel, type DialOptions, dial } from '../grpc/dial.js';
import { fromServiceError } from '../grpc/statusCodec.js';

export interface Connection {
  /** The channel every client below shares; make clients of other services with `channel.client(...)`. */
  channel: DialedChannel;
  instanceName: string;
  cas: InstanceType<typeof ContentAddressableStorageClient>;
  byteStream: InstanceType<typeof ByteStreamClient>;
  actionCache: InstanceType<typeof ActionCacheClient>;
  capabilities: InstanceType<typeof CapabilitiesClient>;
  execution: InstanceType<typeof ExecutionClient>;
  operations: InstanceType<typeof OperationsClient>;
  close(): void;
}

/** Connects to a server address (see parseDialTarget for the forms accepted). */
export function connect(url: string, instanceName = '', options: DialOptions = {}): Connection {
  const channel = dial(url, options);
  return {
    channel,
    instanceName,
    cas: channel.client(ContentAddressableStorageClient),
    byteStream: channel.client(ByteStreamClient),
    actionCache: channel.client(ActionCacheClient),
    capabilities: channel.client(CapabilitiesClient),
    execution: channel.client(ExecutionClient),
    operations: channel.client(OperationsClient),
    close: () => channel.close(),
  };
}

/**
 * Turns a callback-style unary call into a promise; failures become StatusErrors.
 * Usage: `await unary<Res>((done) => client.method(request, done))`.
 */
export function unary<Res>(
  invoke: (done: (error: ServiceError | null, response?: Res) => void) => unknown,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke((error, response) => {
      if (error) reject(fromServiceError(error));
      else resolve(response as Res);
    });
  });
}

export { fromServiceError };
