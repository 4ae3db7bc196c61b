/**
 * One storage node of a farm (`granary storage`): a disk CAS served over CAS,
 * ByteStream and Capabilities, nothing else. Frontends (`granary serve
 * --storage-node`) spread blobs over several such nodes and keep N copies of each
 * (see storage/replicatedBlobStore.ts); the action cache and asset records live in
 * the farm's database, so a node holds only content-addressed blobs, and losing
 * one loses nothing that is not also elsewhere.
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
import { FramedByteStreamService } from '../grpc/readResponseFrames.js';
import { createGrpcServer } from '../grpc/server.js';
import type { BlobStore } from '../storage/blobStore.js';
import { DiskBlobStore } from '../storage/diskBlobStore.js';
import { VerifyingBlobStore } from '../storage/verifyingBlobStore.js';
import { MAXIMUM_BATCH_TOTAL_BYTES, MAXIMUM_MESSAGE_BYTES } from './storageServer.js';

export interface StorageNodeConfig {
  /** HOST:PORT (port 0 picks a free port). */
  listen: string;
  /** Where the blobs are kept. */
  directory: string;
  /** Bound on the blobs kept; the least recently used beyond it are evicted. */
  maximumSizeBytes: number;
}

/** A storage node that is serving. */
export interface RunningStorageNode {
  address: string;
  port: number;
  cas: BlobStore;
  /** Stops serving, lets calls in flight finish, and saves the disk index. */
  close(): Promise<void>;
}

export async function startStorageNode(config: StorageNodeConfig): Promise<RunningStorageNode> {
  const disk = await DiskBlobStore.open({ directory: config.directory, maximumSizeBytes: config.maximumSizeBytes });
  const cas = new VerifyingBlobStore(disk);
  const compressors: Compressor[] = zstdAvailable() ? ['zstd'] : [];
  const wireCompressors = compressors.map(() => Compressor_Value.ZSTD);
  const byteStream = new ByteStreamBlobs(cas, { supportedCompressors: compressors });
  const server = createGrpcServer({
    listeners: [{ address: config.listen }],
    maximumMessageBytes: MAXIMUM_MESSAGE_BYTES,
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
  let listener: { address: string; port: number };
  try {
    [listener] = (await server.listen()) as [{ address: string; port: number }];
  } catch (error) {
    byteStream.close();
    await disk.close();
    throw error;
  }
  let closed: Promise<void> | undefined;
  return {
    address: listener.address,
    port: listener.port,
    cas,
    close: () => {
      closed ??= (async () => {
        await server.close();
        byteStream.close();
        await disk.close();
      })();
      return closed;
    },
  };
}
