/**
 * gRPC adapter for Capabilities: reports what this server was configured to do,
 * for the caller asking: `update_enabled` and `exec_enabled` are true only when
 * the caller may call UpdateActionResult and Execute on the instance it named
 * (the spec's capabilities "pertain to that instance", and Bazel reads a false
 * as "the current account is not authorized").
 */
import { SUPPORTED_DIGEST_FUNCTIONS } from '../digest/digest.js';
import {
  type CapabilitiesServer,
  Compressor_Value,
  type ExecutionCapabilities,
  type ServerCapabilities,
  SymlinkAbsolutePathStrategy_Value,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { callerMay, unary } from './handlers.js';

const UPDATE_ACTION_RESULT = '/build.bazel.remote.execution.v2.ActionCache/UpdateActionResult';
const EXECUTE = '/build.bazel.remote.execution.v2.Execution/Execute';

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
  return {
    getCapabilities: unary(async (_request, context, call) => {
      const [mayUpdate, mayExecute] = await Promise.all([
        config.actionCacheUpdateEnabled && callerMay(call, context, UPDATE_ACTION_RESULT),
        config.execution?.execEnabled === true && callerMay(call, context, EXECUTE),
      ]);
      return serverCapabilities({
        ...config,
        actionCacheUpdateEnabled: mayUpdate,
        execution: config.execution && { ...config.execution, execEnabled: mayExecute },
      });
    }),
  };
}

export { Compressor_Value };
