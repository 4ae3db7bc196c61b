/**
 * Opens the `grpc` leaf of a storage graph: a remote CAS (a storage node of
 * the farm, or any REAPI server) as a BlobStore, dialled with the node's TLS
 * files and token file. The storage factory is handed this function, since the
 * storage layer itself knows nothing of gRPC.
 */
import { readFileSync } from 'node:fs';
import type { DialOptions } from '../grpc/dial.js';
import type { GrpcStorageConfig } from '../storage/storageConfig.js';
import type { OpenedStore } from '../storage/storageFactory.js';
import { ConfigError, keyPath } from '../util/configValues.js';
import { connect } from './connection.js';
import { GrpcBlobStore } from './grpcBlobStore.js';
import { fileTokenSource } from './tokenSource.js';

/** A remote CAS as a store; `path` names the node in errors. */
export function openRemoteStore(config: GrpcStorageConfig, path: string): OpenedStore {
  const options: DialOptions = {
    ...(config.tls
      ? {
          tls: {
            certificateAuthorityPem: readPem(config.tls.caFile, keyPath(path, 'tls.caFile')),
            clientCertificateChainPem: readPem(config.tls.certFile, keyPath(path, 'tls.certFile')),
            clientPrivateKeyPem: readPem(config.tls.keyFile, keyPath(path, 'tls.keyFile')),
          },
        }
      : {}),
    ...(config.tokenFile ? { token: fileTokenSource(config.tokenFile) } : {}),
  };
  let connection: ReturnType<typeof connect>;
  try {
    connection = connect(config.target, config.instanceName ?? '', options);
  } catch (error) {
    throw new ConfigError(keyPath(path, 'target'), (error as Error).message);
  }
  return { store: new GrpcBlobStore(connection), close: async () => connection.close() };
}

function readPem(file: string | undefined, path: string): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConfigError(path, `cannot read ${file}: ${(error as Error).message}`);
  }
}
