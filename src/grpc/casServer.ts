/** gRPC adapter for ContentAddressableStorage: validates wire messages and delegates. */
import { resolveDigestFunction } from '../digest/digest.js';
import type { ContentAddressableStorage } from '../cas/contentAddressableStorage.js';
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
import { invalidArgument, unimplemented } from '../util/status.js';
import { serverStreaming, unary, writeWithBackpressure } from './handlers.js';
import { OK_STATUS, toRpcStatus } from './statusCodec.js';

export function casServer(cas: ContentAddressableStorage): ContentAddressableStorageServer {
  return {
    findMissingBlobs: unary(async (request: FindMissingBlobsRequest): Promise<FindMissingBlobsResponse> => {
      const fn = resolveDigestFunction(request.digestFunction, request.blobDigests[0]?.hash);
      return { missingBlobDigests: await cas.findMissing(request.blobDigests, fn) };
    }),
    batchUpdateBlobs: unary(async (request: BatchUpdateBlobsRequest): Promise<BatchUpdateBlobsResponse> => {
      const fn = resolveDigestFunction(request.digestFunction, request.requests[0]?.digest?.hash);
      for (const [i, r] of request.requests.entries()) {
        if (r.compressor !== Compressor_Value.IDENTITY) {
          throw invalidArgument(`requests[${i}]: compressor ${Compressor_Value[r.compressor] ?? r.compressor} is not supported`);
        }
      }
      const results = await cas.batchUpdate(request.requests, fn);
      return {
        responses: results.map((r) => ({ digest: r.digest, status: r.error ? toRpcStatus(r.error) : OK_STATUS })),
      };
    }),
    batchReadBlobs: unary(async (request: BatchReadBlobsRequest): Promise<BatchReadBlobsResponse> => {
      const fn = resolveDigestFunction(request.digestFunction, request.digests[0]?.hash);
      const results = await cas.batchRead(request.digests, fn);
      return {
        responses: results.map((r) => ({
          digest: r.digest,
          data: r.data ?? Buffer.alloc(0),
          compressor: Compressor_Value.IDENTITY,
          status: r.error ? toRpcStatus(r.error) : OK_STATUS,
        })),
      };
    }),
    getTree: serverStreaming(async (request: GetTreeRequest, call) => {
      const fn = resolveDigestFunction(request.digestFunction, request.rootDigest?.hash);
      // Stream every page from the requested one; each message carries the token of the next.
      for await (const page of cas.treePages(request.rootDigest, fn, request.pageSize, request.pageToken)) {
        if (call.cancelled) return;
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
