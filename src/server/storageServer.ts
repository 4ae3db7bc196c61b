/**
 * Wires the storage services (CAS, ByteStream, Action Cache, Remote Asset Fetch
 * and Push, Capabilities) onto a grpc-js server from a configuration.
 * `granary serve` and the tests use this.
 */
import { ActionCache, actionResultRecords } from '../actioncache/actionCache.js';
import { RemoteAssetService } from '../asset/assetService.js';
import { AssetStore, assetRecords } from '../asset/assetStore.js';
import { Downloader } from '../asset/downloader.js';
import type { FetchPolicy } from '../asset/fetchPolicy.js';
import { ByteStreamBlobs } from '../cas/byteStream.js';
import { ContentAddressableStorage } from '../cas/contentAddressableStorage.js';
import type { Compressor } from '../cas/resourceName.js';
import { openRemoteStore } from '../client/remoteStorage.js';
import { zstdAvailable } from '../compression/zstd.js';
import { backgroundContext } from '../context/requestContext.js';
import type { PostgresDatabase } from '../database/postgresDatabase.js';
import { FetchService, PushService } from '../gen/build/bazel/remote/asset/v1/remote_asset.js';
import {
  CapabilitiesService,
  Compressor_Value,
  ContentAddressableStorageService,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { actionCacheServer, EncodedActionCacheService } from '../grpc/actionCacheServer.js';
import { fetchServer, pushServer } from '../grpc/assetServer.js';
import { byteStreamServer } from '../grpc/byteStreamServer.js';
import { type CapabilitiesConfig, capabilitiesServer } from '../grpc/capabilitiesServer.js';
import { casServer } from '../grpc/casServer.js';
import { addHealthAndReflection, type HealthSource, servingHealth } from '../grpc/healthServer.js';
import { FramedByteStreamService } from '../grpc/readResponseFrames.js';
import {
  createGrpcServer,
  type GrpcServer,
  type GrpcServerOptions,
  type ListenerOptions,
  type ServerTlsOptions,
} from '../grpc/server.js';
import { log } from '../observability/log.js';
import { UploadQuota } from '../quota/uploadQuota.js';
import type { BlobStore, StorageUsage } from '../storage/blobStore.js';
import type { EvictionRound } from '../storage/eviction.js';
import { PostgresRecordStore } from '../storage/postgresRecordStore.js';
import type { StorageNodeConfig } from '../storage/storageConfig.js';
import { type OpenedStore, openStorageGraph, type StorageGraphOptions } from '../storage/storageFactory.js';
import type { StorageObserver } from '../storage/storageObserver.js';

/** Largest gRPC message accepted or sent. */
export const MAXIMUM_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Advertised batch limit: well below the message limit, leaving room for per-blob overhead. */
export const MAXIMUM_BATCH_TOTAL_BYTES = 4 * 1024 * 1024;

/** The edge hooks of a server: who calls, what they may do, who observes the calls. */
export type ServerHooks = Pick<GrpcServerOptions, 'authenticator' | 'authorizer' | 'interceptors'>;

/** What the server's logs and metrics hear from storage. Called synchronously; must not throw. */
export interface StorageObservers {
  /** A store (`cas`, `action-cache`, `asset`) evicted blobs to make room. */
  eviction?(store: string, round: EvictionRound): void;
  actionCacheLookup?(hit: boolean): void;
  /**
   * Every call on each store as a whole (named `cas`, `action-cache`, `asset`),
   * through the storage graphs' `metrics` nodes, and through every node with
   * observeEveryStorageNode: calls, bytes, misses, errors, durations.
   */
  storage?: StorageObserver;
}

/** A store of the server by name, for its usage in metrics and the admin view. */
export interface NamedStore {
  readonly name: string;
  usage?(): StorageUsage;
}

export interface StorageServerConfig {
  /** HOST:PORT (port 0 picks a free port) or unix:PATH. */
  listen: string;
  /** Serve TLS on `listen`; plain text when absent. */
  tls?: ServerTlsOptions;
  /** More listeners with the same services (e.g. a private unix socket for the embedded worker). */
  additionalListeners?: ListenerOptions[];
  /** Authentication, authorization and call observers; anonymous, unrestricted and unobserved when absent. */
  hooks?: ServerHooks;
  /** Storage events for logs and metrics. */
  observers?: StorageObservers;
  /** The CAS's storage graph; its content is verified at the root (see storageFactory's verifyRoot). */
  cas: StorageNodeConfig;
  /** The action cache's storage graph (results under derived keys, so not verified). */
  actionCache: StorageNodeConfig;
  /** How long blobs referenced by a served action result are kept (ms). */
  retentionGraceMs?: number;
  /** Remote Asset records; a small in-memory store when absent. */
  asset?: StorageNodeConfig;
  /** Report every node of the storage graphs to observers.storage, named by its configuration path. */
  observeEveryStorageNode?: boolean;
  /** How long a push or fetch of an asset protects its content from eviction (ms; capped by expire_at). */
  assetRetentionMs?: number;
  /**
   * Keep the action cache and the Remote Asset records in the farm's PostgreSQL,
   * shared with every frontend using it, instead of `actionCache` and `asset`;
   * each kind is bounded by `maximumSizeBytes` (least recently used evicted).
   */
  sharedRecords?: { database: PostgresDatabase; maximumSizeBytes: number };
  /** Where large downloads of the remote downloader are staged; the system's temporary directory when absent. */
  downloadScratchDirectory?: string;
  /** Where the remote downloader may connect; only to globally reachable addresses when absent. */
  fetchPolicy?: FetchPolicy;
  /** Redirects the remote downloader follows per URI (DEFAULT_MAXIMUM_REDIRECTS when absent). */
  maximumDownloadRedirects?: number;
  /** Largest download (MAXIMUM_DOWNLOAD_BYTES when absent; never more than the CAS holds). */
  maximumDownloadBytes?: number;
  /** Bytes each caller may upload to the CAS per minute; unlimited when absent. */
  uploadBytesPerMinute?: number;
  /**
   * Serve and advertise zstd compressed-blobs and compressed batches (default true);
   * only where the zstd codec is installed.
   */
  compression?: boolean;
}

/** Remote Asset records when the configuration names no store for them: a small memory store. */
const DEFAULT_ASSET_STORAGE: StorageNodeConfig = { memory: { maxSizeBytes: 16 * 1024 * 1024 } };

/** Largest resource the remote downloader fetches by default (further bounded by the CAS size). */
export const MAXIMUM_DOWNLOAD_BYTES = 8 * 1024 * 1024 * 1024;

export interface RunningServer {
  /** The bound HOST:PORT. */
  address: string;
  port: number;
  cas: BlobStore;
  actionCache: ActionCache;
  assets: AssetStore;
  /** The health of the server (`''`) or of one of its services, as grpc.health.v1 reports it. */
  health: HealthSource;
  /** The stores by name (`cas`, `action-cache`, `asset`), whose usage metrics read. */
  stores: readonly NamedStore[];
  /** Settles when start-up has re-applied retention to the content of live assets (with their count). */
  assetRetentionRestored: Promise<number>;
  close(): Promise<void>;
}

export async function startStorageServer(
  config: StorageServerConfig,
  extend?: (
    server: GrpcServer,
    parts: { cas: BlobStore; actionCache: ActionCache },
  ) => Promise<Partial<CapabilitiesConfig> & { close?: () => Promise<void>; health?: HealthSource }>,
): Promise<RunningServer> {
  const observers = config.observers ?? {};
  // The action cache remembers complete results; an eviction from the CAS may have taken their outputs.
  let casEvicted = () => {};
  const graph = (name: string): StorageGraphOptions => ({
    openRemote: openRemoteStore,
    observer: observers.storage,
    observeEveryNode: config.observeEveryStorageNode,
    rootName: name,
    onEviction: (round: EvictionRound) => {
      if (name === 'cas') casEvicted();
      observers.eviction?.(name, round);
    },
    log: (line) => log.warn(line),
  });
  const opened: OpenedStore[] = [];
  const closeOpened = async () => {
    for (const store of opened.splice(0).reverse()) await store.close();
  };
  const open = async (make: () => Promise<OpenedStore> | OpenedStore) => {
    const store = await make();
    opened.push(store);
    return store;
  };
  let casStorage: OpenedStore;
  let acStorage: OpenedStore;
  let assetStorage: OpenedStore;
  try {
    casStorage = await open(() => openStorageGraph(config.cas, 'storage.cas', { ...graph('cas'), verifyRoot: true }));
    acStorage = await open(() =>
      config.sharedRecords
        ? sharedRecords(config.sharedRecords, 'action-cache')
        : openStorageGraph(config.actionCache, 'storage.actionCache', graph('action-cache')),
    );
    assetStorage = await open(() =>
      config.sharedRecords
        ? sharedRecords(config.sharedRecords, 'asset')
        : openStorageGraph(config.asset ?? DEFAULT_ASSET_STORAGE, 'storage.assets', graph('asset')),
    );
  } catch (error) {
    await closeOpened();
    throw error;
  }
  const cas = casStorage.store;
  const actionCache = new ActionCache(actionResultRecords(acStorage.store), cas, {
    retentionGraceMs: config.retentionGraceMs,
    onLookup: observers.actionCacheLookup && ((hit) => observers.actionCacheLookup?.(hit)),
  });
  casEvicted = () => actionCache.casLostBlobs();
  const assets = new AssetStore(assetRecords(assetStorage.store), cas, { retentionMs: config.assetRetentionMs });
  // Retention marks are not persisted by the CAS: re-apply them for live assets, in the background.
  const assetRetentionRestored = assets.restoreRetention(backgroundContext()).catch(() => 0);
  const maximumDownloadBytes = config.maximumDownloadBytes ?? MAXIMUM_DOWNLOAD_BYTES;
  const downloader = new Downloader(cas, {
    maximumBytes: Math.min(maximumDownloadBytes, cas.usage?.(backgroundContext()).maximumBytes ?? maximumDownloadBytes),
    maximumRedirects: config.maximumDownloadRedirects,
    policy: config.fetchPolicy,
    scratchDirectory: config.downloadScratchDirectory,
  });
  const assetService = new RemoteAssetService(assets, downloader);
  const compressors: Compressor[] = config.compression !== false && zstdAvailable() ? ['zstd'] : [];
  const wireCompressors = compressors.map(() => Compressor_Value.ZSTD);
  const byteStream = new ByteStreamBlobs(cas, { supportedCompressors: compressors });
  const uploadQuota = config.uploadBytesPerMinute ? new UploadQuota(config.uploadBytesPerMinute) : undefined;
  const server = createGrpcServer({
    listeners: [{ address: config.listen, tls: config.tls }, ...(config.additionalListeners ?? [])],
    maximumMessageBytes: MAXIMUM_MESSAGE_BYTES,
    ...config.hooks,
  });
  server.addService(
    ContentAddressableStorageService,
    casServer(new ContentAddressableStorage(cas, MAXIMUM_BATCH_TOTAL_BYTES), { compressors, uploadQuota }),
  );
  server.addService(FramedByteStreamService, byteStreamServer(byteStream, { uploadQuota }));
  server.addService(EncodedActionCacheService, actionCacheServer(actionCache, true));
  server.addService(FetchService, fetchServer(assetService));
  server.addService(PushService, pushServer(assetService));
  const extension = extend ? await extend(server, { cas, actionCache }) : {};
  server.addService(
    CapabilitiesService,
    capabilitiesServer({
      maxBatchTotalSizeBytes: MAXIMUM_BATCH_TOTAL_BYTES,
      actionCacheUpdateEnabled: true,
      supportedCompressors: wireCompressors,
      supportedBatchUpdateCompressors: wireCompressors,
      ...extension,
    }),
  );
  let closed = false;
  // Every served service is SERVING while the server is open, unless the extension
  // (the farm, for Execution) says otherwise; all are NOT_SERVING once it is closing.
  const health = servingHealth(server, () => closed, extension.health);
  addHealthAndReflection(server, health);
  const [listener] = await server.listen();
  const { address, port } = listener as { address: string; port: number };
  return {
    address,
    port,
    cas,
    actionCache,
    assets,
    health,
    stores: [
      namedStore('cas', casStorage.store),
      namedStore('action-cache', acStorage.store),
      namedStore('asset', assetStorage.store),
    ],
    assetRetentionRestored,
    close: async () => {
      if (closed) return;
      closed = true;
      await server.close();
      byteStream.close();
      await extension.close?.();
      await assetRetentionRestored;
      await closeOpened();
    },
  };
}

/** One kind of record in the farm's database. */
function sharedRecords(settings: NonNullable<StorageServerConfig['sharedRecords']>, namespace: string): OpenedStore {
  const store = new PostgresRecordStore(settings.database, { namespace, maximumSizeBytes: settings.maximumSizeBytes });
  return { store, close: () => store.close() };
}

/** A store as metrics read it: its name, and its usage now. */
export function namedStore(name: string, store: BlobStore): NamedStore {
  return { name, usage: store.usage && (() => store.usage?.(backgroundContext()) as StorageUsage) };
}
