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
    fetchBlob: unary((request: FetchBlobRequest): Promise<FetchBlobResponse> => service.fetchBlob(request)),
    fetchDirectory: unary(
      (request: FetchDirectoryRequest): Promise<FetchDirectoryResponse> => service.fetchDirectory(request),
    ),
  };
}

export function pushServer(service: RemoteAssetService): PushServer {
  return {
    pushBlob: unary(async (request: PushBlobRequest): Promise<PushBlobResponse> => {
      await service.pushBlob(request);
      return {};
    }),
    pushDirectory: unary(async (request: PushDirectoryRequest): Promise<PushDirectoryResponse> => {
      await service.pushDirectory(request);
      return {};
    }),
  };
}
