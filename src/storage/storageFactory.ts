/**
 * The one place a BlobStore graph is built: from a checked StorageNodeConfig
 * (storageConfig.ts), each node becomes a backend or a decorator around the
 * stores built for its children, depth first. Every node can report metrics
 * (to a StorageObserver) under its path or its `metrics` name; every decorator
 * offers the optional capabilities that make sense over its children (see
 * BlobStore), so callers never look at the configuration to learn what the
 * store can do or how big it is.
 *
 * The leaf this layer cannot make itself is handed in: remote gRPC stores
 * (client/remoteStorage.ts's openRemoteStore).
 */

import { ConfigError, keyPath } from '../util/configValues.js';
import { DirectoryInUseError } from '../util/directoryLock.js';
import type { BlobStore } from './blobStore.js';
import { DiskBlobStore } from './diskBlobStore.js';
import type { EvictionListener } from './eviction.js';
import { ExistenceCachingBlobStore } from './existenceCachingBlobStore.js';
import { MemoryBlobStore } from './memoryBlobStore.js';
import { MetricsBlobStore } from './metricsBlobStore.js';
import { MirroredBlobStore } from './mirroredBlobStore.js';
import { ReadCachingBlobStore } from './readCachingBlobStore.js';
import { ReplicatedBlobStore } from './replicatedBlobStore.js';
import { SegmentBlobStore } from './segmentBlobStore.js';
import { ShardingBlobStore } from './shardingBlobStore.js';
import { SizeRoutingBlobStore } from './sizeRoutingBlobStore.js';
import { type GrpcStorageConfig, type StorageNodeConfig, storageNodeKind } from './storageConfig.js';
import type { StorageObserver } from './storageObserver.js';
import { VerifyingBlobStore } from './verifyingBlobStore.js';

/** A built store and how to release what it holds (files, timers, connections). */
export interface OpenedStore {
  store: BlobStore;
  close(): Promise<void>;
}

export interface StorageGraphOptions {
  /** Opens a `grpc` node; without it such a node is a configuration error. */
  openRemote?: (config: GrpcStorageConfig, path: string) => OpenedStore;
  /** Told about replicated nodes going down and coming back, and failed repairs. */
  log?: (line: string) => void;
  /** Receives the calls of `metrics` nodes (and of every node with observeEveryNode). */
  observer?: StorageObserver;
  /** Report every node, named by its path in the configuration, not only `metrics` nodes. */
  observeEveryNode?: boolean;
  /**
   * Report the calls on the whole graph (at its root) under this name, e.g. the
   * server's `cas`: what clients read and write, whatever the graph's shape.
   */
  rootName?: string;
  /** Told about the eviction rounds of every bounded disk in the graph. */
  onEviction?: EvictionListener;
  /** The CAS: content is verified at the root unless the root already is a `verifying` node. */
  verifyRoot?: boolean;
}

/**
 * Builds the graph of `config` (checked by parseStorageNode); `path` names the
 * root in errors and metrics (e.g. `storage.cas`). On failure, whatever was
 * already opened is closed again.
 */
export async function openStorageGraph(
  config: StorageNodeConfig,
  path: string,
  options: StorageGraphOptions = {},
): Promise<OpenedStore> {
  const opened = await openNode(config, path, options);
  const verified =
    !options.verifyRoot || storageNodeKind(config) === 'verifying'
      ? opened
      : { store: new VerifyingBlobStore(opened.store), close: opened.close };
  if (!options.observer || options.rootName === undefined) return verified;
  return { store: new MetricsBlobStore(verified.store, options.rootName, options.observer), close: verified.close };
}

async function openNode(config: StorageNodeConfig, path: string, options: StorageGraphOptions): Promise<OpenedStore> {
  const opened = await openUnobserved(config, path, options);
  if (!options.observer || !options.observeEveryNode || 'metrics' in config) return opened;
  return { store: new MetricsBlobStore(opened.store, path, options.observer), close: opened.close };
}

async function openUnobserved(
  config: StorageNodeConfig,
  path: string,
  options: StorageGraphOptions,
): Promise<OpenedStore> {
  const at = keyPath(path, storageNodeKind(config));
  if ('memory' in config) {
    return leaf(new MemoryBlobStore(config.memory.maxSizeBytes));
  }
  if ('disk' in config) {
    try {
      const store = await DiskBlobStore.open({
        directory: config.disk.path,
        maximumSizeBytes: config.disk.maxSizeBytes,
        onEviction: options.onEviction,
        readOnlyBlobs: config.disk.readOnlyBlobs,
      });
      return { store, close: () => store.close() };
    } catch (error) {
      throw openFailure(at, config.disk.path, error);
    }
  }
  if ('segments' in config) {
    try {
      const store = await SegmentBlobStore.open({
        directory: config.segments.path,
        maximumSizeBytes: config.segments.maxSizeBytes,
        onEviction: options.onEviction,
      });
      return { store, close: () => store.close() };
    } catch (error) {
      throw openFailure(at, config.segments.path, error);
    }
  }
  if ('sizeRouting' in config) {
    const [small, large] = await openAll(
      [
        [config.sizeRouting.small, keyPath(at, 'small')],
        [config.sizeRouting.large, keyPath(at, 'large')],
      ],
      options,
    );
    return composite(new SizeRoutingBlobStore(small!.store, large!.store, config.sizeRouting.maxSmallBlobBytes), [
      small!,
      large!,
    ]);
  }
  if ('grpc' in config) {
    if (!options.openRemote) throw new ConfigError(at, 'remote storage is not available here');
    return options.openRemote(config.grpc, at);
  }
  if ('verifying' in config) {
    const inner = await openNode(config.verifying.backend, keyPath(at, 'backend'), options);
    return { store: new VerifyingBlobStore(inner.store), close: inner.close };
  }
  if ('metrics' in config) {
    const inner = await openNode(config.metrics.backend, keyPath(at, 'backend'), options);
    if (!options.observer) return inner;
    return { store: new MetricsBlobStore(inner.store, config.metrics.name, options.observer), close: inner.close };
  }
  if ('existenceCaching' in config) {
    const inner = await openNode(config.existenceCaching.backend, keyPath(at, 'backend'), options);
    return { store: new ExistenceCachingBlobStore(inner.store, config.existenceCaching.ttlMs), close: inner.close };
  }
  if ('readCaching' in config) {
    const [fast, slow] = await openAll(
      [
        [config.readCaching.fast, keyPath(at, 'fast')],
        [config.readCaching.slow, keyPath(at, 'slow')],
      ],
      options,
    );
    return composite(new ReadCachingBlobStore(fast!.store, slow!.store), [fast!, slow!]);
  }
  if ('mirrored' in config) {
    const backendsPath = keyPath(at, 'backends');
    const mirrors = await openAll(
      config.mirrored.backends.map((backend, index) => [backend, keyPath(backendsPath, index)]),
      options,
    );
    return composite(new MirroredBlobStore(mirrors.map((mirror) => mirror.store)), mirrors);
  }
  if ('sharding' in config) {
    const shardsPath = keyPath(at, 'shards');
    const shards = await openAll(
      config.sharding.shards.map((shard, index) => [shard.backend, keyPath(keyPath(shardsPath, index), 'backend')]),
      options,
    );
    const store = new ShardingBlobStore(
      config.sharding.shards.map((shard, index) => ({
        id: placementId(shard.backend),
        weight: shard.weight,
        store: (shards[index] as OpenedStore).store,
      })),
    );
    return composite(store, shards);
  }
  if ('replicated' in config) {
    const nodesPath = keyPath(at, 'nodes');
    const nodes = await openAll(
      config.replicated.nodes.map((node, index) => [node.backend, keyPath(keyPath(nodesPath, index), 'backend')]),
      options,
    );
    let replicated: ReplicatedBlobStore;
    try {
      replicated = new ReplicatedBlobStore(
        config.replicated.nodes.map((node, index) => ({
          id: placementId(node.backend),
          store: (nodes[index] as OpenedStore).store,
        })),
        { replicas: config.replicated.replicas, log: options.log },
      );
    } catch (error) {
      await closeAll(nodes);
      throw new ConfigError(at, (error as Error).message);
    }
    return { store: replicated, close: () => replicated.close().finally(() => closeAll(nodes)) };
  }
  throw new ConfigError(path, 'unknown storage node');
}

/**
 * Why a store on disk did not open, against its `path` setting; a directory
 * another process holds is no mistake of the configuration and is told as it is.
 */
function openFailure(at: string, directory: string, error: unknown): Error {
  if (error instanceof DirectoryInUseError) return error;
  return new ConfigError(keyPath(at, 'path'), `cannot open ${directory}: ${(error as Error).message}`);
}

/**
 * A shard's or a replica node's identity for placement: a remote node's address
 * (without grpc://, as `--storage-node` has always named nodes), else its
 * configuration; so placement does not change when nodes are listed in another
 * order, and every frontend that names a node alike places blobs alike.
 */
function placementId(backend: StorageNodeConfig): string {
  if ('grpc' in backend) return backend.grpc.target.replace(/^grpc:\/\//, '');
  return canonicalJson(backend);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, entry]) => entry !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, entry]) => `${JSON.stringify(key)}:${canonicalJson(entry)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function leaf(store: BlobStore): OpenedStore {
  return { store, close: async () => {} };
}

function composite(store: BlobStore, children: readonly OpenedStore[]): OpenedStore {
  return { store, close: () => closeAll(children) };
}

/** Opens children one after another; closes the ones opened when one fails. */
async function openAll(
  children: ReadonlyArray<readonly [StorageNodeConfig, string]>,
  options: StorageGraphOptions,
): Promise<OpenedStore[]> {
  const opened: OpenedStore[] = [];
  try {
    for (const [config, path] of children) opened.push(await openNode(config, path, options));
  } catch (error) {
    await closeAll(opened);
    throw error;
  }
  return opened;
}

/** Closes every store, reporting the first failure after trying them all. */
async function closeAll(stores: readonly OpenedStore[]): Promise<void> {
  const results = await Promise.allSettled([...stores].reverse().map((opened) => opened.close()));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}
