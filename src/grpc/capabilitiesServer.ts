/** gRPC adapter for Capabilities: reports what this server was configured to do. */
import { SUPPORTED_DIGEST_FUNCTIONS } from '../digest/digest.js';
import {
  type CapabilitiesServer,
  Compressor_Value,
  type ExecutionCapabilities,
  type ServerCapabilities,
  SymlinkAbsolutePathStrategy_Value,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { unary } from './handlers.js';

export interface CapabilitiesConfig {
  maxBatchTotalSizeBytes: number;
  actionCacheUpdateEnabled: boolean;
  /** Compressors of ByteStream compressed-blobs (identity is implied). */
  supportedCompressors: Compressor_Value[];
  /** Compressors accepted by BatchUpdateBlobs; none when absent. */
  supportedBatchUpdateCompressors?: Compressor_Value[];
  /** Present when this server runs actions. */
  execution?: ExecutionCapabilities;
}

/**
 * API versions: 2.0 to 2.2. Bazel 4 to 8 negotiate within 2.0-2.2 and Bazel 9 accepts
 * up to 2.11; 2.2 adds output_paths and Action.platform, which we honour.
 */
export function serverCapabilities(config: CapabilitiesConfig): ServerCapabilities {
  return {
    cacheCapabilities: {
      digestFunctions: SUPPORTED_DIGEST_FUNCTIONS.map((f) => f.value as number),
      actionCacheUpdateCapabilities: { updateEnabled: config.actionCacheUpdateEnabled },
      cachePriorityCapabilities: undefined,
      maxBatchTotalSizeBytes: config.maxBatchTotalSizeBytes,
      symlinkAbsolutePathStrategy: SymlinkAbsolutePathStrategy_Value.ALLOWED,
      supportedCompressors: config.supportedCompressors,
      supportedBatchUpdateCompressors: config.supportedBatchUpdateCompressors ?? [],
      maxCasBlobSizeBytes: 0,
      blobSplitSupport: false,
      blobSpliceSupport: false,
    },
    executionCapabilities: config.execution,
    deprecatedApiVersion: undefined,
    lowApiVersion: { major: 2, minor: 0, patch: 0, prerelease: '' },
    highApiVersion: { major: 2, minor: 2, patch: 0, prerelease: '' },
  };
}

export function capabilitiesServer(config: CapabilitiesConfig): CapabilitiesServer {
  const capabilities = serverCapabilities(config);
  return { getCapabilities: unary(async () => capabilities) };
}

export { Compressor_Value };
