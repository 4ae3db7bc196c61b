/** gRPC adapters for the Remote Asset API's Fetch and Push services. */
import type { RemoteAssetService } from '../asset/assetService.js';
import type {
  FetchBlobRequest,
  FetchBlobResponse,
  FetchDirectoryRequest,
  FetchDirectoryResponse,
  FetchServer,
  PushBlobRequest,
  PushBlobResponse,
  PushDirectoryRequest,
  PushDirectoryResponse,
  PushServer,
} from '../gen/build/bazel/remote/asset/v1/remote_asset.js';
import { unary } from './handlers.js';

export function fetchServer(service: RemoteAssetService): FetchServer {
  return {
    fetchBlob: unary(
      (request: FetchBlobRequest, context): Promise<FetchBlobResponse> => service.fetchBlob(context, request),
    ),
    fetchDirectory: unary(
      (request: FetchDirectoryRequest, context): Promise<FetchDirectoryResponse> =>
        service.fetchDirectory(context, request),
    ),
  };
}

export function pushServer(service: RemoteAssetService): PushServer {
  return {
    pushBlob: unary(async (request: PushBlobRequest, context): Promise<PushBlobResponse> => {
      await service.pushBlob(context, request);
      return {};
    }),
    pushDirectory: unary(async (request: PushDirectoryRequest, context): Promise<PushDirectoryResponse> => {
      await service.pushDirectory(context, request);
      return {};
    }),
  };
}
