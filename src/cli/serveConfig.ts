/**
 * The configuration of `granary serve`: which setting of a configuration file
 * each flag stands for, and the storage graphs (the file's `storage` section,
 * or the graphs the --data, --max-size, --storage-node and --database flags
 * describe, which are what `granary serve` without a file has always built).
 * `granary serve` and `granary config print` both resolve their flags here, so
 * what is printed is what would run.
 */
import { join, resolve } from 'node:path';
import { type GrpcStorageConfig, parseStorageNode, type StorageNodeConfig } from '../storage/storageConfig.js';
import { keyPath, readObject } from '../util/configValues.js';

import { actionLimitSettings } from './actionLimitFlags.js';
import { type FlagSpec, flag, type ParsedArgs, parseArgs, parseSizeFlag, UsageError } from './args.js';
import {
  applyConfigFile,
  applyFlagDefaults,
  type ConfigSetting,
  documentOf,
  readConfigFile,
  setAt,
} from './configFile.js';

/** Every setting of a serve configuration file that a flag also sets. */
export const SERVE_SETTINGS: readonly ConfigSetting[] = [
  { path: 'listen', flag: 'listen', kind: 'string' },
  { path: 'httpListen', flag: 'http-listen', kind: 'string' },
  { path: 'logFormat', flag: 'log-format', kind: 'string' },
  { path: 'data', flag: 'data', kind: 'string' },
  { path: 'maxSize', flag: 'max-size', kind: 'string' },
  { path: 'security.tlsCert', flag: 'tls-cert', kind: 'string' },
  { path: 'security.tlsKey', flag: 'tls-key', kind: 'string' },
  { path: 'security.tlsClientCa', flag: 'tls-client-ca', kind: 'string' },
  { path: 'security.authTokens', flag: 'auth-tokens', kind: 'string' },
  { path: 'security.authJwks', flag: 'auth-jwks', kind: 'string' },
  { path: 'security.authJwtAudience', flag: 'auth-jwt-audience', kind: 'string' },
  { path: 'security.authJwtIssuer', flag: 'auth-jwt-issuer', kind: 'string' },
  { path: 'security.anonymous', flag: 'anonymous', kind: 'string' },
  { path: 'actionCache.retentionGrace', flag: 'retention-grace', kind: 'string' },
  { path: 'remoteAsset.retention', flag: 'asset-retention', kind: 'string' },
  { path: 'remoteAsset.fetchAllow', flag: 'fetch-allow', kind: 'list' },
  { path: 'remoteAsset.fetchMaxRedirects', flag: 'fetch-max-redirects', kind: 'string' },
  { path: 'remoteAsset.fetchMaxSize', flag: 'fetch-max-size', kind: 'string' },
  { path: 'quotas.concurrentOperations', flag: 'quota-concurrent-operations', kind: 'string' },
  { path: 'quotas.queuedOperations', flag: 'quota-queued-operations', kind: 'string' },
  { path: 'quotas.uploadPerMinute', flag: 'quota-upload-per-minute', kind: 'string' },
  { path: 'scheduler.workerTimeout', flag: 'worker-timeout', kind: 'string' },
  { path: 'scheduler.platformMatch', flag: 'platform-match', kind: 'pairs' },
  { path: 'database.url', flag: 'database', kind: 'string' },
  { path: 'database.recordsSize', flag: 'database-records-size', kind: 'string' },
  { path: 'embeddedWorker.slots', flag: 'workers', kind: 'string' },
  { path: 'embeddedWorker.platform', flag: 'worker-platform', kind: 'pairs' },
  { path: 'embeddedWorker.sandbox', flag: 'sandbox', kind: 'string' },
  { path: 'embeddedWorker.drainTimeout', flag: 'worker-drain-timeout', kind: 'string' },
  ...actionLimitSettings('embeddedWorker.'),
];

/** The three storage graphs of a server. */
export interface ServeStorage {
  cas: StorageNodeConfig;
  actionCache: StorageNodeConfig;
  assets: StorageNodeConfig;
}

/** A resolved serve configuration: every flag set (file, then defaults), and the storage graphs. */
export interface ServeConfiguration {
  args: ParsedArgs;
  storage: ServeStorage;
}

const STORAGE_KEYS = ['cas', 'actionCache', 'assets'] as const;

/** Flags, then the --config file for what the flags leave unset, then the defaults. */
export function resolveServeConfiguration(
  argv: readonly string[],
  specs: Record<string, FlagSpec>,
): ServeConfiguration {
  const args = parseArgs(argv, specs, { withDefaults: false });
  const file = flag(args, 'config');
  const sections = file ? applyConfigFile(readConfigFile(file), args, SERVE_SETTINGS, ['storage']) : {};
  applyFlagDefaults(args, specs);
  const explicit = sections.storage === undefined ? {} : parseStorageSection(sections.storage);
  const defaults = defaultStorage(args);
  const storageNodes = args.flags.get('storage-node') ?? [];
  const replicas = replicaCount(args, storageNodes);
  return {
    args,
    storage: {
      // --storage-node (and --replicas) are a shortcut for storage.cas, and flags win over the file.
      cas:
        storageNodes.length > 0
          ? {
              replicated: {
                replicas,
                nodes: storageNodes.map((target) => ({ backend: { grpc: storageNodeTarget(args, target) } })),
              },
            }
          : (explicit.cas ?? defaults.cas),
      actionCache: explicit.actionCache ?? defaults.actionCache,
      assets: explicit.assets ?? defaults.assets,
    },
  };
}

/** The effective configuration as a document, for `granary config print`. */
export function serveDocument(configuration: ServeConfiguration): Record<string, unknown> {
  const document = documentOf(configuration.args, SERVE_SETTINGS);
  setAt(document, 'storage', configuration.storage);
  return document;
}

/** A --storage-node as a grpc node, with the --storage-node-tls-* files when given. */
function storageNodeTarget(args: ParsedArgs, target: string): GrpcStorageConfig {
  const caFile = flag(args, 'storage-node-tls-ca');
  const certFile = flag(args, 'storage-node-tls-cert');
  const keyFile = flag(args, 'storage-node-tls-key');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError('--storage-node-tls-cert and --storage-node-tls-key go together');
  }
  const tls = Object.fromEntries(
    Object.entries({ caFile, certFile, keyFile }).filter(([, value]) => value !== undefined),
  ) as GrpcStorageConfig['tls'];
  if (Object.keys(tls ?? {}).length === 0) return { target };
  if (!target.startsWith('grpcs://')) {
    throw new UsageError(`--storage-node-tls-* need grpcs:// storage nodes, got ${target}`);
  }
  return { target, tls };
}

/** --replicas, checked against the storage nodes given: 2 by default when there are two or more. */
function replicaCount(args: ParsedArgs, storageNodes: readonly string[]): number {
  if (new Set(storageNodes).size !== storageNodes.length) {
    throw new UsageError('--storage-node: a node is listed twice');
  }
  const text = flag(args, 'replicas');
  if (text === undefined) return Math.min(2, Math.max(1, storageNodes.length));
  if (storageNodes.length === 0) throw new UsageError('--replicas needs --storage-node');
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > storageNodes.length) {
    throw new UsageError(
      `--replicas must be between 1 and the number of storage nodes (${storageNodes.length}), got "${text}"`,
    );
  }
  return value;
}

function parseStorageSection(value: unknown): Partial<ServeStorage> {
  const section = readObject(value, 'storage', STORAGE_KEYS);
  const storage: Partial<ServeStorage> = {};
  for (const key of STORAGE_KEYS) {
    if (section[key] !== undefined) storage[key] = parseStorageNode(section[key], keyPath('storage', key));
  }
  return storage;
}

/**
 * Blobs up to this size go to the CAS's segment store (docs/performance.md:
 * one file per small blob cost 4 to 8 times the CPU of an append to a segment).
 */
const SMALL_BLOB_BYTES = 64 * 1024;
/** The segment store's share of the CAS's budget: small blobs are most of the count, not of the bytes. */
const SMALL_BLOB_SHARE = 1 / 4;

/**
 * The bound of the embedded worker's cache when it links inputs from the farm's
 * CAS: a tenth of --max-size, at most 2 GiB (and at least a byte, a valid bound).
 * It then holds executable inputs (a link shares the CAS file's read-only mode),
 * small blobs (in the CAS's segment files, which cannot be linked) and the blobs
 * it could not link.
 */
export function embeddedWorkerCacheBytes(maximumSizeBytes: number): number {
  return Math.max(1, Math.min(2 * 1024 ** 3, Math.floor(maximumSizeBytes / 10)));
}

/**
 * The graphs `granary serve` builds from its flags: a verified CAS under --data
 * (blobs up to 64 KiB in segments, larger ones in read-only files the embedded
 * worker links inputs from), and small disk stores for the action cache and the
 * asset records, each a slice of --max-size (with --database those records live
 * in the database); the embedded worker's cache, when it runs, is a slice too, so
 * --max-size bounds it all.
 */
function defaultStorage(args: ParsedArgs): ServeStorage {
  const data = resolve(flag(args, 'data') as string);
  const maximumSizeBytes = parseSizeFlag(args, 'max-size');
  // The action cache and the asset records hold small entries; give each a small slice of the budget.
  const actionCacheBytes = Math.max(16 * 1024 * 1024, Math.floor(maximumSizeBytes / 50));
  const recordsBytes =
    flag(args, 'database') !== undefined ? 0 : Math.min(2 * actionCacheBytes, Math.floor(maximumSizeBytes / 2));
  const workerCacheBytes = Number(flag(args, 'workers')) > 0 ? embeddedWorkerCacheBytes(maximumSizeBytes) : 0;
  const casBytes = maximumSizeBytes - recordsBytes - workerCacheBytes;
  const smallBlobBytes = Math.floor(casBytes * SMALL_BLOB_SHARE);
  return {
    cas: {
      verifying: {
        backend: {
          sizeRouting: {
            maxSmallBlobBytes: SMALL_BLOB_BYTES,
            small: { segments: { path: join(data, 'cas-small'), maxSizeBytes: smallBlobBytes } },
            large: { disk: { path: join(data, 'cas'), maxSizeBytes: casBytes - smallBlobBytes, readOnlyBlobs: true } },
          },
        },
      },
    },
    actionCache: { disk: { path: join(data, 'ac'), maxSizeBytes: actionCacheBytes } },
    // Remote Asset records are small (a few hundred bytes each): the same small slice.
    assets: { disk: { path: join(data, 'asset'), maxSizeBytes: actionCacheBytes } },
  };
}
