/** gRPC adapter for ContentAddressableStorage: validates wire messages and delegates. */
import type { ContentAddressableStorage } from '../cas/contentAddressableStorage.js';
import type { Compressor } from '../cas/resourceName.js';
import { compressBuffer } from '../compression/zstd.js';
import { resolveDigestFunction } from '../digest/digest.js';
import type {
  BatchReadBlobsRequest,
  BatchReadBlobsResponse,
  BatchUpdateBlobsRequest,
  BatchUpdateBlobsResponse,
  ContentAddressableStorageServer,
  FindMissingBlobsRequest,
  FindMissingBlobsResponse,
  GetTreeRequest,
  GetTreeResponse,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Compressor_Value } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { UploadQuota } from '../quota/uploadQuota.js';
import { invalidArgument, unimplemented } from '../util/status.js';
import { serverStreaming, unary, writeWithBackpressure } from './handlers.js';
import { OK_STATUS, toRpcStatus } from './statusCodec.js';

/** Batch reads compress blobs from this size on (when the client accepts zstd), and keep the result if smaller. */
const COMPRESS_BATCH_READS_FROM_BYTES = 512;

export interface CasServerOptions {
  /** Compressors accepted in BatchUpdateBlobs and used for BatchReadBlobs (besides identity). */
  compressors?: readonly Compressor[];
  /** Per-caller upload allowance BatchUpdateBlobs spends (the blobs' sizes); unlimited when absent. */
  uploadQuota?: UploadQuota;
}

export function casServer(
  cas: ContentAddressableStorage,
  options: CasServerOptions = {},
): ContentAddressableStorageServer {
  const zstd = options.compressors?.includes('zstd') ?? false;
  return {
    findMissingBlobs: unary(async (request: FindMissingBlobsRequest, context): Promise<FindMissingBlobsResponse> => {
      const fn = resolveDigestFunction(request.digestFunction, request.blobDigests[0]?.hash);
      return { missingBlobDigests: await cas.findMissing(context, request.blobDigests, fn) };
    }),
    batchUpdateBlobs: unary(async (request: BatchUpdateBlobsRequest, context): Promise<BatchUpdateBlobsResponse> => {
      options.uploadQuota?.charge(
        context,
        request.requests.reduce((total, r) => total + Math.max(0, r.digest?.sizeBytes ?? 0), 0),
      );
      const fn = resolveDigestFunction(request.digestFunction, request.requests[0]?.digest?.hash);
      const items = request.requests.map((r, i) => {
        if (r.compressor === Compressor_Value.IDENTITY) return { digest: r.digest, data: r.data };
        if (r.compressor === Compressor_Value.ZSTD && zstd) {
          return { digest: r.digest, data: r.data, compressor: 'zstd' as const };
        }
        throw invalidArgument(
          `requests[${i}]: compressor ${Compressor_Value[r.compressor] ?? r.compressor} is not supported`,
        );
      });
      const results = await cas.batchUpdate(context, items, fn);
      return {
        responses: results.map((r) => ({ digest: r.digest, status: r.error ? toRpcStatus(r.error) : OK_STATUS })),
      };
    }),
    batchReadBlobs: unary(async (request: BatchReadBlobsRequest, context): Promise<BatchReadBlobsResponse> => {
      const fn = resolveDigestFunction(request.digestFunction, request.digests[0]?.hash);
      const results = await cas.batchRead(context, request.digests, fn);
      const compress = zstd && request.acceptableCompressors.includes(Compressor_Value.ZSTD);
      return {
        responses: results.map((r) => {
          let data = r.data ?? Buffer.alloc(0);
          let compressor = Compressor_Value.IDENTITY;
          if (compress && data.length >= COMPRESS_BATCH_READS_FROM_BYTES) {
            const compressed = compressBuffer(data);
            if (compressed.length < data.length) {
              data = compressed;
              compressor = Compressor_Value.ZSTD;
            }
          }
          return { digest: r.digest, data, compressor, status: r.error ? toRpcStatus(r.error) : OK_STATUS };
        }),
      };
    }),
    getTree: serverStreaming(async (request: GetTreeRequest, context, call) => {
      const fn = resolveDigestFunction(request.digestFunction, request.rootDigest?.hash);
      // Stream every page from the requested one; each message carries the token of the next.
      for await (const page of cas.treePages(context, request.rootDigest, fn, request.pageSize, request.pageToken)) {
        if (context.signal.aborted) return;
        await writeWithBackpressure<GetTreeResponse>(call, page);
      }
    }),
    splitBlob: unary(async () => {
      throw unimplemented('SplitBlob is not supported (blob_split_support is false)');
    }),
    spliceBlob: unary(async () => {
      throw unimplemented('SpliceBlob is not supported (blob_splice_support is false)');
    }),
  };
}
