/**
 * The storage configuration: one recursive node type, each node a mapping with a
 * single key naming a backend or a decorator, so any graph is written with the
 * same few words, in YAML or JSON:
 *
 *   verifying: { backend: { disk: { path: /var/cache/granary/cas, maxSizeBytes: 100GiB } } }
 *   readCaching: { fast: { memory: { maxSizeBytes: 1GiB } }, slow: { grpc: { target: grpc://node:8980 } } }
 *   sizeRouting: { maxSmallBlobBytes: 64KiB, small: { segments: { ... } }, large: { disk: { ... } } }
 *   sharding: { shards: [ { weight: 2, backend: { disk: ... } }, { weight: 1, backend: { disk: ... } } ] }
 *
 * parseStorageNode checks a value read from a file (or built from flags) and
 * names the exact path of any bad key; storageFactory.ts builds the BlobStore
 * graph from the result. docs/configuration.md describes every node.
 */
import {
  ConfigError,
  keyPath,
  readArray,
  readBoolean,
  readDurationMs,
  readNumber,
  readObject,
  readOneOf,
  readOptionalString,
  readSize,
  readString,
} from '../util/configValues.js';

/** A remote REAPI CAS (another `granary serve`, or any REAPI server). */
export interface GrpcStorageConfig {
  /** grpc://HOST:PORT, grpcs://HOST:PORT, HOST:PORT or unix:PATH. */
  target: string;
  /** The remote instance name ('' when absent). */
  instanceName?: string;
  /** For grpcs:// targets: files of the CA, and of the client certificate and key for mTLS. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** A file holding the bearer token to send (re-read for every call). */
  tokenFile?: string;
}

/** A bounded store of one file per blob under `path` (DiskBlobStore). */
export interface DiskStorageConfig {
  path: string;
  maxSizeBytes: number;
  /**
   * Blob files are read-only (0444), so a worker on this machine may hard-link
   * them into input roots instead of keeping its own copy (`granary serve` sets
   * it for the CAS it builds from its flags).
   */
  readOnlyBlobs?: boolean;
}

/** N copies of each blob over the nodes, with repair (ReplicatedBlobStore; placement is unweighted). */
export interface ReplicatedStorageConfig {
  /** Copies of each blob (at most the number of nodes). */
  replicas: number;
  nodes: Array<{ backend: StorageNodeConfig }>;
}

/** One node of a storage graph. */
export type StorageNodeConfig =
  | { memory: { maxSizeBytes: number } }
  | { disk: DiskStorageConfig }
  | { segments: { path: string; maxSizeBytes: number } }
  | { grpc: GrpcStorageConfig }
  | { verifying: { backend: StorageNodeConfig } }
  | { sharding: { shards: Array<{ weight: number; backend: StorageNodeConfig }> } }
  | { readCaching: { fast: StorageNodeConfig; slow: StorageNodeConfig } }
  | { mirrored: { backends: StorageNodeConfig[] } }
  | { replicated: ReplicatedStorageConfig }
  | { existenceCaching: { backend: StorageNodeConfig; ttlMs: number } }
  | { metrics: { name: string; backend: StorageNodeConfig } }
  | { sizeRouting: { maxSmallBlobBytes: number; small: StorageNodeConfig; large: StorageNodeConfig } };

/** The names of every kind of node. */
export const STORAGE_NODE_KINDS = [
  'memory',
  'disk',
  'grpc',
  'verifying',
  'sharding',
  'readCaching',
  'mirrored',
  'replicated',
  'existenceCaching',
  'metrics',
  'segments',
  'sizeRouting',
] as const;

export type StorageNodeKind = (typeof STORAGE_NODE_KINDS)[number];

/** The kind of a (checked) node. */
export function storageNodeKind(node: StorageNodeConfig): StorageNodeKind {
  return Object.keys(node)[0] as StorageNodeKind;
}

/** A read-only disk store a worker on this machine may hard-link inputs from (see linkableDisk). */
export interface LinkableDisk {
  directory: string;
  /** Blobs of at most this many bytes never reach the directory (sizeRouting sends them to another store). */
  smallBlobBytes: number;
}

/**
 * The read-only disk store that holds a graph's blobs (its large ones, behind
 * sizeRouting), when the graph is such a store under decorators that keep each
 * blob as it is there (verifying, metrics, existence caching): what a worker on
 * this machine may hard-link inputs from (it fetches what is not there).
 * Undefined for any other graph.
 */
export function linkableDisk(node: StorageNodeConfig): LinkableDisk | undefined {
  if ('disk' in node) return node.disk.readOnlyBlobs ? { directory: node.disk.path, smallBlobBytes: 0 } : undefined;
  if ('sizeRouting' in node) {
    const large = linkableDisk(node.sizeRouting.large);
    const smallBlobBytes = node.sizeRouting.maxSmallBlobBytes;
    return large && { directory: large.directory, smallBlobBytes: Math.max(large.smallBlobBytes, smallBlobBytes) };
  }
  if ('verifying' in node) return linkableDisk(node.verifying.backend);
  if ('metrics' in node) return linkableDisk(node.metrics.backend);
  if ('existenceCaching' in node) return linkableDisk(node.existenceCaching.backend);
  return undefined;
}

/**
 * Checks a storage node read from a file or built from flags and returns it
 * normalised (sizes and durations in bytes and milliseconds). Throws
 * ConfigError naming the path of the first bad key.
 */
export function parseStorageNode(value: unknown, path: string): StorageNodeConfig {
  const [kind, settings] = readOneOf(value, path, STORAGE_NODE_KINDS);
  const at = keyPath(path, kind);
  switch (kind as StorageNodeKind) {
    case 'memory': {
      const memory = readObject(settings, at, ['maxSizeBytes'], ['maxSizeBytes']);
      return { memory: { maxSizeBytes: readSize(memory.maxSizeBytes, keyPath(at, 'maxSizeBytes')) } };
    }
    case 'disk': {
      const disk = readObject(settings, at, ['path', 'maxSizeBytes', 'readOnlyBlobs'], ['path', 'maxSizeBytes']);
      const config: DiskStorageConfig = parseLocalDisk({ path: disk.path, maxSizeBytes: disk.maxSizeBytes }, at);
      if (disk.readOnlyBlobs !== undefined) {
        config.readOnlyBlobs = readBoolean(disk.readOnlyBlobs, keyPath(at, 'readOnlyBlobs'));
      }
      return { disk: config };
    }
    case 'segments':
      return { segments: parseLocalDisk(settings, at) };
    case 'grpc':
      return { grpc: parseGrpc(settings, at) };
    case 'verifying': {
      const verifying = readObject(settings, at, ['backend'], ['backend']);
      return { verifying: { backend: parseStorageNode(verifying.backend, keyPath(at, 'backend')) } };
    }
    case 'sharding': {
      const sharding = readObject(settings, at, ['shards'], ['shards']);
      return { sharding: { shards: parseWeighted(sharding.shards, keyPath(at, 'shards')) } };
    }
    case 'readCaching': {
      const caching = readObject(settings, at, ['fast', 'slow'], ['fast', 'slow']);
      return {
        readCaching: {
          fast: parseStorageNode(caching.fast, keyPath(at, 'fast')),
          slow: parseStorageNode(caching.slow, keyPath(at, 'slow')),
        },
      };
    }
    case 'mirrored': {
      const mirrored = readObject(settings, at, ['backends'], ['backends']);
      const backendsPath = keyPath(at, 'backends');
      const backends = readArray(mirrored.backends, backendsPath, { minimumLength: 2 });
      return {
        mirrored: {
          backends: backends.map((backend, index) => parseStorageNode(backend, keyPath(backendsPath, index))),
        },
      };
    }
    case 'replicated': {
      const replicated = readObject(settings, at, ['replicas', 'nodes'], ['replicas', 'nodes']);
      const nodesPath = keyPath(at, 'nodes');
      const nodes = readArray(replicated.nodes, nodesPath, { minimumLength: 1 }).map((entry, index) => {
        const nodePath = keyPath(nodesPath, index);
        const node = readObject(entry, nodePath, ['backend'], ['backend']);
        return { backend: parseStorageNode(node.backend, keyPath(nodePath, 'backend')) };
      });
      const replicas = readNumber(replicated.replicas, keyPath(at, 'replicas'), { minimum: 1, maximum: nodes.length });
      return { replicated: { replicas, nodes } };
    }
    case 'existenceCaching': {
      const caching = readObject(settings, at, ['backend', 'ttl'], ['backend', 'ttl']);
      return {
        existenceCaching: {
          backend: parseStorageNode(caching.backend, keyPath(at, 'backend')),
          ttlMs: readDurationMs(caching.ttl, keyPath(at, 'ttl')),
        },
      };
    }
    case 'sizeRouting': {
      const routing = readObject(
        settings,
        at,
        ['maxSmallBlobBytes', 'small', 'large'],
        ['maxSmallBlobBytes', 'small', 'large'],
      );
      return {
        sizeRouting: {
          maxSmallBlobBytes: readSize(routing.maxSmallBlobBytes, keyPath(at, 'maxSmallBlobBytes')),
          small: parseStorageNode(routing.small, keyPath(at, 'small')),
          large: parseStorageNode(routing.large, keyPath(at, 'large')),
        },
      };
    }
    case 'metrics': {
      const metrics = readObject(settings, at, ['name', 'backend'], ['name', 'backend']);
      return {
        metrics: {
          name: readString(metrics.name, keyPath(at, 'name')),
          backend: parseStorageNode(metrics.backend, keyPath(at, 'backend')),
        },
      };
    }
  }
}

/** The settings of the two local-disk backends, `disk` and `segments`. */
function parseLocalDisk(settings: unknown, path: string): { path: string; maxSizeBytes: number } {
  const disk = readObject(settings, path, ['path', 'maxSizeBytes'], ['path', 'maxSizeBytes']);
  return {
    path: readString(disk.path, keyPath(path, 'path')),
    maxSizeBytes: readSize(disk.maxSizeBytes, keyPath(path, 'maxSizeBytes')),
  };
}

function parseGrpc(settings: unknown, path: string): GrpcStorageConfig {
  const grpc = readObject(settings, path, ['target', 'instanceName', 'tls', 'tokenFile'], ['target']);
  const config: GrpcStorageConfig = { target: readString(grpc.target, keyPath(path, 'target')) };
  if (grpc.instanceName !== undefined) {
    if (typeof grpc.instanceName !== 'string')
      throw new ConfigError(keyPath(path, 'instanceName'), 'expected a string');
    config.instanceName = grpc.instanceName;
  }
  if (grpc.tls !== undefined) {
    const tlsPath = keyPath(path, 'tls');
    const tls = readObject(grpc.tls, tlsPath, ['caFile', 'certFile', 'keyFile']);
    const certFile = readOptionalString(tls.certFile, keyPath(tlsPath, 'certFile'));
    const keyFile = readOptionalString(tls.keyFile, keyPath(tlsPath, 'keyFile'));
    if ((certFile === undefined) !== (keyFile === undefined)) {
      throw new ConfigError(tlsPath, 'certFile and keyFile go together (a client certificate needs its key)');
    }
    const caFile = readOptionalString(tls.caFile, keyPath(tlsPath, 'caFile'));
    config.tls = {
      ...(caFile === undefined ? {} : { caFile }),
      ...(certFile === undefined ? {} : { certFile, keyFile }),
    };
  }
  const tokenFile = readOptionalString(grpc.tokenFile, keyPath(path, 'tokenFile'));
  if (tokenFile !== undefined) config.tokenFile = tokenFile;
  return config;
}

function parseWeighted(value: unknown, path: string): Array<{ weight: number; backend: StorageNodeConfig }> {
  return readArray(value, path, { minimumLength: 1 }).map((entry, index) => {
    const at = keyPath(path, index);
    const weighted = readObject(entry, at, ['weight', 'backend'], ['backend']);
    return {
      weight:
        weighted.weight === undefined
          ? 1
          : readNumber(weighted.weight, keyPath(at, 'weight'), { minimum: Number.MIN_VALUE, fractional: true }),
      backend: parseStorageNode(weighted.backend, keyPath(at, 'backend')),
    };
  });
}
