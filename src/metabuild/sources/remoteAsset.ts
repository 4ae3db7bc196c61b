/**
 * The `remote-asset` source: content the farm's Remote Asset service names by a
 * URI (and optional qualifiers), such as a tree pushed with `granary push-dir` or
 * a tarball pushed with `granary publish`. `type: directory` asks FetchDirectory,
 * `type: tarball` asks FetchBlob and unpacks the blob (with `base-dir` as the
 * `tar` source does: by default the single top-level directory is stripped);
 * without `type`, FetchDirectory is tried first and FetchBlob after it.
 *
 * The asset is resolved when the cache key is computed, and the key holds the
 * digest it resolved to, so a key always names one content. Staging reuses that
 * resolution within the same client session, so what is built is what was keyed.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type AssetService, type Qualifier, qualifiersFrom } from '../../client/remoteAsset.js';
import { backgroundContext } from '../../context/requestContext.js';
import { type Digest, formatDigest } from '../../digest/digest.js';
import {
  checkKeys,
  describeError,
  optionalString,
  requireString,
  type SourceConfig,
  type SourceContext,
  SourceError,
  type SourceKind,
} from './sourceKind.js';
import { stageTarball } from './tar.js';

const KIND = 'remote-asset';
const TYPES = ['directory', 'tarball'] as const;
type AssetType = (typeof TYPES)[number];

interface RemoteAssetConfig {
  uri: string;
  qualifiers: Qualifier[];
  type: AssetType | undefined;
  baseDir: string;
}

interface Resolved {
  type: AssetType;
  digest: Digest;
}

function parse(config: SourceConfig, location: string | undefined): RemoteAssetConfig {
  const where = location ?? '';
  checkKeys(config, KIND, ['uri', 'qualifiers', 'type', 'base-dir'], where);
  const uri = requireString(config, 'uri', KIND, where);
  const rawQualifiers = config.qualifiers;
  const map: Record<string, string> = {};
  if (rawQualifiers !== undefined && rawQualifiers !== null) {
    if (typeof rawQualifiers !== 'object' || Array.isArray(rawQualifiers)) {
      throw new SourceError(location, `${KIND} source ${uri}: 'qualifiers' must be a mapping of names to strings`);
    }
    for (const [name, value] of Object.entries(rawQualifiers as Record<string, unknown>)) {
      if (typeof value !== 'string') {
        throw new SourceError(location, `${KIND} source ${uri}: qualifier '${name}' must be a string`);
      }
      map[name] = value;
    }
  }
  const type = optionalString(config, 'type', KIND, where);
  if (type !== undefined && !(TYPES as readonly string[]).includes(type)) {
    throw new SourceError(location, `${KIND} source ${uri}: 'type' must be one of ${TYPES.join(', ')} (not '${type}')`);
  }
  const baseDir = optionalString(config, 'base-dir', KIND, where);
  if (baseDir !== undefined && type === 'directory') {
    throw new SourceError(location, `${KIND} source ${uri}: 'base-dir' applies to tarballs only`);
  }
  return { uri, qualifiers: qualifiersFrom(map), type: type as AssetType | undefined, baseDir: baseDir ?? '*' };
}

/** Resolutions by asset service, so key() and stage() of one session agree. */
const resolutions = new WeakMap<AssetService, Map<string, Promise<Resolved>>>();

function resolve(parsed: RemoteAssetConfig, context: SourceContext): Promise<Resolved> {
  const { location } = context;
  const asset = context.asset;
  if (!asset) {
    throw new SourceError(location, `${KIND} source ${parsed.uri}: no Remote Asset service (this needs a farm)`);
  }
  let cache = resolutions.get(asset);
  if (!cache) {
    cache = new Map();
    resolutions.set(asset, cache);
  }
  const id = JSON.stringify([parsed.uri, parsed.qualifiers, parsed.type ?? '']);
  let pending = cache.get(id);
  if (!pending) {
    pending = fetchAsset(asset, parsed, location);
    cache.set(id, pending);
    // A failure is not remembered: the next attempt asks again.
    pending.catch(() => cache.delete(id));
  }
  return pending;
}

async function fetchAsset(
  asset: AssetService,
  parsed: RemoteAssetConfig,
  location: string | undefined,
): Promise<Resolved> {
  const describe = () =>
    parsed.qualifiers.length > 0
      ? `${parsed.uri} (qualifiers ${parsed.qualifiers.map((q) => `${q.name}=${q.value}`).join(', ')})`
      : parsed.uri;
  try {
    if (parsed.type !== 'tarball') {
      const directory = await asset.fetchDirectory([parsed.uri], parsed.qualifiers);
      if (directory) return { type: 'directory', digest: directory.digest };
    }
    if (parsed.type !== 'directory') {
      const blob = await asset.fetchBlob([parsed.uri], parsed.qualifiers);
      if (blob) return { type: 'tarball', digest: blob.digest };
    }
  } catch (error) {
    throw new SourceError(location, `${KIND} source: fetching ${describe()} failed: ${describeError(error)}`);
  }
  const what = parsed.type === 'directory' ? 'directory' : parsed.type === 'tarball' ? 'blob' : 'directory or blob';
  throw new SourceError(location, `${KIND} source: the farm has no ${what} asset ${describe()}`);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The tarball blob in a local file (kept in the download cache by digest). */
async function download(digest: Digest, context: SourceContext): Promise<string> {
  const directory = join(context.cacheDir, 'remote-asset');
  const path = join(directory, `${digest.hash}-${digest.sizeBytes}`);
  if (await exists(path)) return path;
  await mkdir(directory, { recursive: true });
  const blob = await context.cas.get(backgroundContext(), digest);
  if (!blob) throw new Error(`blob ${formatDigest(digest)} is missing from the CAS`);
  const temporary = join(directory, `.download-${randomUUID()}`);
  try {
    await pipeline(blob.read(), createWriteStream(temporary));
    await rename(temporary, path);
  } finally {
    await rm(temporary, { force: true });
  }
  return path;
}

async function stageRemoteAsset(config: SourceConfig, context: SourceContext): Promise<Digest> {
  const parsed = parse(config, context.location);
  const resolved = await resolve(parsed, context);
  if (resolved.type === 'directory') {
    // FetchDirectory guarantees the tree is in the CAS.
    return resolved.digest;
  }
  let path: string;
  try {
    path = await download(resolved.digest, context);
  } catch (error) {
    throw new SourceError(context.location, `${KIND} source ${parsed.uri}: ${describeError(error)}`);
  }
  return stageTarball(path, parsed.baseDir, `${KIND} source ${parsed.uri}`, context);
}

export const remoteAssetSource: SourceKind = {
  kind: KIND,
  validate(config, location) {
    parse(config, location);
  },
  async key(config, context) {
    const parsed = parse(config, context.location);
    const resolved = await resolve(parsed, context);
    return {
      uri: parsed.uri,
      qualifiers: parsed.qualifiers.map((q) => ({ name: q.name, value: q.value })),
      type: resolved.type,
      digest: formatDigest(resolved.digest),
      ...(resolved.type === 'tarball' ? { 'base-dir': parsed.baseDir } : {}),
    };
  },
  stage: stageRemoteAsset,
};
