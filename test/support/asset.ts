/**
 * Helpers for tests of the Remote Asset API: typed Fetch/Push calls over a
 * connection, and a local HTTP origin that counts requests and records headers.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Connection, unary } from '../../src/client/connection.js';
import {
  type FetchBlobRequest,
  type FetchBlobResponse,
  FetchClient,
  type FetchDirectoryRequest,
  type FetchDirectoryResponse,
  type PushBlobRequest,
  PushClient,
  type PushDirectoryRequest,
} from '../../src/gen/build/bazel/remote/asset/v1/remote_asset.js';

export interface AssetCalls {
  fetchBlob(request: Partial<FetchBlobRequest>): Promise<FetchBlobResponse>;
  fetchDirectory(request: Partial<FetchDirectoryRequest>): Promise<FetchDirectoryResponse>;
  pushBlob(request: Partial<PushBlobRequest>): Promise<void>;
  pushDirectory(request: Partial<PushDirectoryRequest>): Promise<void>;
}

/** Fetch and Push clients sharing the connection's channel; failures become StatusErrors. */
export function assetCalls(connection: Connection): AssetCalls {
  const fetch = connection.channel.client(FetchClient);
  const push = connection.channel.client(PushClient);
  const fetchDefaults = {
    instanceName: '',
    timeout: undefined,
    oldestContentAccepted: undefined,
    uris: [],
    qualifiers: [],
    digestFunction: 0,
  };
  const pushDefaults = {
    instanceName: '',
    uris: [],
    qualifiers: [],
    expireAt: undefined,
    referencesBlobs: [],
    referencesDirectories: [],
    digestFunction: 0,
  };
  return {
    fetchBlob: (request) => unary<FetchBlobResponse>((done) => fetch.fetchBlob({ ...fetchDefaults, ...request }, done)),
    fetchDirectory: (request) =>
      unary<FetchDirectoryResponse>((done) => fetch.fetchDirectory({ ...fetchDefaults, ...request }, done)),
    pushBlob: async (request) => {
      await unary((done) => push.pushBlob({ ...pushDefaults, blobDigest: undefined, ...request }, done));
    },
    pushDirectory: async (request) => {
      await unary((done) => push.pushDirectory({ ...pushDefaults, rootDirectoryDigest: undefined, ...request }, done));
    },
  };
}

export interface OriginRequest {
  path: string;
  headers: IncomingHttpHeaders;
}

export interface Origin {
  /** http://127.0.0.1:PORT */
  url: string;
  requests: OriginRequest[];
  /** Requests for one path so far. */
  count(path: string): number;
  /** TCP connections accepted so far (a refused fetch must leave this unchanged). */
  connections(): number;
  close(): Promise<void>;
}

export type Route = (response: ServerResponse, request: OriginRequest) => void;

/**
 * A local HTTP server on `host` (127.0.0.1 by default): each path maps to content
 * (served with 200) or a handler; others are 404. It counts connections as well as requests.
 */
export async function startOrigin(routes: Record<string, Buffer | Route>, host = '127.0.0.1'): Promise<Origin> {
  const requests: OriginRequest[] = [];
  let connections = 0;
  const server: Server = createServer((request, response) => {
    const seen = { path: request.url ?? '', headers: request.headers };
    requests.push(seen);
    const route = routes[seen.path];
    if (route === undefined) {
      response.writeHead(404, 'Not Found').end('no such file');
    } else if (Buffer.isBuffer(route)) {
      response
        .writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': route.length })
        .end(route);
    } else {
      route(response, seen);
    }
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    requests,
    count: (path) => requests.filter((r) => r.path === path).length,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The `checksum.sri` value of content for an algorithm. */
export function sriOf(data: Buffer, algorithm: 'sha256' | 'sha384' | 'sha512' = 'sha256'): string {
  return `${algorithm}-${createHash(algorithm).update(data).digest().toString('base64')}`;
}
