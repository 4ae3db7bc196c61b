/**
 * One storage node of a farm (`granary storage`): a disk CAS served over CAS,
 * ByteStream and Capabilities, nothing else. Frontends (`granary serve
 * --storage-node`) spread blobs over several such nodes and keep N copies of each
 * (see storage/replicatedBlobStore.ts); the action cache and asset records live in
 * the farm's database, so a node holds only content-addressed blobs, and losing
 * one loses nothing that is not also elsewhere. Like `granary serve`'s, its gRPC
 * port answers health checks and reflection, and its storage reports to the
 * observers it is given (metrics of the store named `cas`, eviction rounds).
 */
import { ByteStreamBlobs } from '../cas/byteStream.js';
import { ContentAddressableStorage } from '../cas/contentAddressableStorage.js';
import type { Compressor } from '../cas/resourceName.js';
import { zstdAvailable } from '../compression/zstd.js';
import {
  CapabilitiesService,
  Compressor_Value,
  ContentAddressableStorageService,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { byteStreamServer } from '../grpc/byteStreamServer.js';
import { capabilitiesServer } from '../grpc/capabilitiesServer.js';
import { casServer } from '../grpc/casServer.js';
import { addHealthAndReflection, type HealthSource, servingHealth } from '../grpc/healthServer.js';
import { FramedByteStreamService } from '../grpc/readResponseFrames.js';
import { createGrpcServer, type ServerTlsOptions } from '../grpc/server.js';
import type { BlobStore } from '../storage/blobStore.js';
import type { EvictionRound } from '../storage/eviction.js';
import { openStorageGraph } from '../storage/storageFactory.js';
import {
  MAXIMUM_BATCH_TOTAL_BYTES,
  MAXIMUM_MESSAGE_BYTES,
  type NamedStore,
  namedStore,
  type ServerHooks,
  type StorageObservers,
} from './storageServer.js';

/** The name of the node's store in metrics and logs. */
const STORE_NAME = 'cas';

export interface StorageNodeConfig {
  /** HOST:PORT (port 0 picks a free port). */
  listen: string;
  /** Where the blobs are kept. */
  directory: string;
  /** Bound on the blobs kept; the least recently used beyond it are evicted. */
  maximumSizeBytes: number;
  /** Storage events for logs and metrics. */
  observers?: Pick<StorageObservers, 'eviction' | 'storage'>;
  /** Observers of the gRPC calls (metrics). */
  interceptors?: ServerHooks['interceptors'];
  /**
   * TLS of the listener; with a client CA every caller must present a certificate
   * it signed (the node has no other authentication: mTLS is how frontends prove
   * who they are).
   */
  tls?: ServerTlsOptions;
}

/** A storage node that is serving. */
export interface RunningStorageNode {
  address: string;
  port: number;
  cas: BlobStore;
  /** The node's store by name, for usage metrics. */
  store: NamedStore;
  /** The health of the node (`''`) or of one of its services. */
  health: HealthSource;
  /** Stops serving, lets calls in flight finish, and saves the disk index. */
  close(): Promise<void>;
}

export async function startStorageNode(config: StorageNodeConfig): Promise<RunningStorageNode> {
  const eviction = config.observers?.eviction;
  const opened = await openStorageGraph(
    { verifying: { backend: { disk: { path: config.directory, maxSizeBytes: config.maximumSizeBytes } } } },
    'storage',
    {
      observer: config.observers?.storage,
      rootName: STORE_NAME,
      onEviction: eviction && ((round: EvictionRound) => eviction(STORE_NAME, round)),
    },
  );
  const cas = opened.store;
  const compressors: Compressor[] = zstdAvailable() ? ['zstd'] : [];
  const wireCompressors = compressors.map(() => Compressor_Value.ZSTD);
  const byteStream = new ByteStreamBlobs(cas, { supportedCompressors: compressors });
  const server = createGrpcServer({
    listeners: [{ address: config.listen, tls: config.tls }],
    maximumMessageBytes: MAXIMUM_MESSAGE_BYTES,
    interceptors: config.interceptors,
  });
  server.addService(
    ContentAddressableStorageService,
    casServer(new ContentAddressableStorage(cas, MAXIMUM_BATCH_TOTAL_BYTES), { compressors }),
  );
  server.addService(FramedByteStreamService, byteStreamServer(byteStream));
  server.addService(
    CapabilitiesService,
    capabilitiesServer({
      maxBatchTotalSizeBytes: MAXIMUM_BATCH_TOTAL_BYTES,
      actionCacheUpdateEnabled: false,
      supportedCompressors: wireCompressors,
      supportedBatchUpdateCompressors: wireCompressors,
    }),
  );
  let closed: Promise<void> | undefined;
  const health = servingHealth(server, () => closed !== undefined);
  addHealthAndReflection(server, health);
  let listener: { address: string; port: number };
  try {
    [listener] = (await server.listen()) as [{ address: string; port: number }];
  } catch (error) {
    byteStream.close();
    await opened.close();
    throw error;
  }
  return {
    address: listener.address,
    port: listener.port,
    cas,
    store: namedStore(STORE_NAME, cas),
    health,
    close: () => {
      closed ??= (async () => {
        await server.close();
        byteStream.close();
        await opened.close();
      })();
      return closed;
    },
  };
}
