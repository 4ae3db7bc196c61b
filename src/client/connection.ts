/**
 * A connection to a REAPI server: one channel shared by typed clients for each
 * service, plus promise wrappers for unary calls. Used by the CLI, the worker,
 * benchmarks and tests.
 */
import { credentials, type ServiceError } from '@grpc/grpc-js';
import {
  ActionCacheClient,
  CapabilitiesClient,
  ContentAddressableStorageClient,
  ExecutionClient,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { ByteStreamClient } from '../gen/google/bytestream/bytestream.js';
import { OperationsClient } from '../gen/google/longrunning/operations.js';
import { CLIENT_CHANNEL_OPTIONS } from '../grpc/tuning.js';
import { Code, StatusError } from '../util/status.js';

export interface Connection {
  target: string;
  instanceName: string;
  cas: InstanceType<typeof ContentAddressableStorageClient>;
  byteStream: InstanceType<typeof ByteStreamClient>;
  actionCache: InstanceType<typeof ActionCacheClient>;
  capabilities: InstanceType<typeof CapabilitiesClient>;
  execution: InstanceType<typeof ExecutionClient>;
  operations: InstanceType<typeof OperationsClient>;
  close(): void;
}

/** Accepts grpc://HOST:PORT, http://HOST:PORT or HOST:PORT. */
export function parseTarget(url: string): string {
  const match = /^(?:grpc|http):\/\/([^/]+)\/?$/.exec(url) ?? /^([^/:]+:\d+)$/.exec(url);
  if (!match) throw new Error(`invalid server address "${url}" (expected grpc://HOST:PORT)`);
  return match[1] as string;
}

export function connect(url: string, instanceName = ''): Connection {
  const target = parseTarget(url);
  const creds = credentials.createInsecure();
  const options = { ...CLIENT_CHANNEL_OPTIONS };
  const cas = new ContentAddressableStorageClient(target, creds, options);
  // Share one channel between all clients.
  const shared = { channelOverride: cas.getChannel() };
  const byteStream = new ByteStreamClient(target, creds, { ...options, ...shared });
  const actionCache = new ActionCacheClient(target, creds, { ...options, ...shared });
  const capabilities = new CapabilitiesClient(target, creds, { ...options, ...shared });
  const execution = new ExecutionClient(target, creds, { ...options, ...shared });
  const operations = new OperationsClient(target, creds, { ...options, ...shared });
  return {
    target,
    instanceName,
    cas,
    byteStream,
    actionCache,
    capabilities,
    execution,
    operations,
    close: () => cas.close(),
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

export function fromServiceError(error: ServiceError): StatusError {
  return new StatusError((error.code as number | undefined) ?? Code.UNKNOWN, error.details || error.message);
}
