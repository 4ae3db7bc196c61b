/**
 * Asset records of the Remote Asset API: (instance name, kind, digest function,
 * URI, canonical qualifier set) -> a blob or directory tree in the CAS, with the
 * blobs and trees it references, an optional expiry and the time it was pushed
 * (or its download from origin started).
 *
 * Records live in a BlobStore under derived keys, as action results do. A record
 * is only served while everything it names is still in the CAS: the blob, or
 * every directory and file of the tree, plus every referenced blob and tree.
 * Otherwise it is a miss, never a dangling answer.
 *
 * Retention: writing or serving a record protects its content from eviction
 * until min(expire_at, now + retentionMs). Start-up re-applies that for every live
 * record (retention marks are not persisted by the CAS). The window is bounded
 * on purpose: an asset without expiry would otherwise pin its content forever,
 * and a store full of pinned artifacts rejects every new upload. The spec lets a
 * server expire content early under storage pressure; such an asset becomes a
 * miss when its content is evicted.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, type DigestFunction, digestFunctionByName, digestKey, SHA256 } from '../digest/digest.js';
import type { Qualifier } from '../gen/build/bazel/remote/asset/v1/remote_asset.js';
import { type BlobStore, getBuffer, putBuffer } from '../storage/blobStore.js';
import { MalformedTreeError } from '../tree/directory.js';
import { type TreeContents, treeContents } from '../tree/walk.js';
import { mapLimited } from '../util/concurrency.js';
import type { CanonicalQualifiers } from './qualifiers.js';

export type AssetKind = 'blob' | 'directory';

export interface AssetKey {
  instanceName: string;
  kind: AssetKind;
  digestFunction: DigestFunction;
  uri: string;
  /** Canonical (see qualifiersForUri). */
  qualifiers: CanonicalQualifiers;
}

export interface AssetRecord extends AssetKey {
  /** The blob (kind "blob") or root Directory (kind "directory"). */
  digest: Digest;
  referencesBlobs: Digest[];
  referencesDirectories: Digest[];
  /** Epoch ms after which the record is not served; undefined: no expiry. */
  expireAtMs?: number;
  /** When it was pushed, or when its download from origin started (epoch ms). */
  updatedAtMs: number;
}

export interface AssetStoreOptions {
  /** How long a push or fetch protects the record's content from eviction (capped by expire_at). */
  retentionMs?: number;
  now?: () => number;
}

/** Default retention window of asset content, refreshed by every push and fetch. */
export const DEFAULT_ASSET_RETENTION_MS = 24 * 60 * 60 * 1000;

/** Directories loaded at once while walking a tree. */
const WALK_CONCURRENCY = 16;

/** What a content check found. */
export type ContentState = { complete: true } | { complete: false; missing: Digest[]; malformed?: string };

export class AssetStore {
  readonly retentionMs: number;
  private readonly now: () => number;

  constructor(
    private readonly records: BlobStore,
    private readonly cas: BlobStore,
    options: AssetStoreOptions = {},
  ) {
    this.retentionMs = options.retentionMs ?? DEFAULT_ASSET_RETENTION_MS;
    this.now = options.now ?? Date.now;
  }

  /** The stored record of a key, expired or not, or undefined. */
  async read(context: RequestContext, key: AssetKey): Promise<AssetRecord | undefined> {
    const data = await getBuffer(context, this.records, storageKey(key));
    if (!data) return undefined;
    const record = decodeRecord(data);
    // Keys are hashes of the identity; check it anyway so a decoding slip can never serve another asset.
    if (!record || storageKey(record).hash !== storageKey(key).hash) return undefined;
    return record;
  }

  async write(context: RequestContext, record: AssetRecord): Promise<void> {
    await putBuffer(context, this.records, storageKey(record), encodeRecord(record));
  }

  /**
   * The newest servable record among `keys`: not expired, updated at or after
   * `oldestAcceptedMs`, and with all its content in the CAS (which this protects
   * from eviction for the retention window).
   */
  async lookup(
    context: RequestContext,
    keys: readonly AssetKey[],
    oldestAcceptedMs = 0,
  ): Promise<AssetRecord | undefined> {
    const now = this.now();
    const candidates: AssetRecord[] = [];
    for (const key of keys) {
      const record = await this.read(context, key);
      if (!record) continue;
      if (record.expireAtMs !== undefined && record.expireAtMs <= now) continue;
      if (record.updatedAtMs < oldestAcceptedMs) continue;
      candidates.push(record);
    }
    candidates.sort((a, b) => b.updatedAtMs - a.updatedAtMs);
    for (const record of candidates) {
      if ((await this.retain(context, record)).complete) return record;
    }
    return undefined;
  }

  /**
   * Checks that a record's content is complete in the CAS and protects what is
   * present until min(expire_at, now + retention).
   */
  async retain(context: RequestContext, record: AssetRecord): Promise<ContentState> {
    return this.checkContent(
      context,
      record.digestFunction,
      record.kind === 'blob' ? [record.digest, ...record.referencesBlobs] : record.referencesBlobs,
      record.kind === 'directory' ? [record.digest, ...record.referencesDirectories] : record.referencesDirectories,
      this.retainUntil(record.expireAtMs),
    );
  }

  retainUntil(expireAtMs: number | undefined): number {
    const window = this.now() + this.retentionMs;
    return expireAtMs === undefined ? window : Math.min(expireAtMs, window);
  }

  /**
   * Whether the blobs and every directory and file of the trees are all in the
   * CAS; present ones are retained until `retainUntilMs`. A directory blob that
   * does not decode, or names a malformed digest, makes the content malformed.
   */
  async checkContent(
    context: RequestContext,
    fn: DigestFunction,
    blobs: readonly Digest[],
    roots: readonly Digest[],
    retainUntilMs: number,
  ): Promise<ContentState> {
    let contents: TreeContents;
    try {
      contents = await treeContents(context, this.cas, roots, {
        concurrency: WALK_CONCURRENCY,
        digestFunction: fn,
      });
    } catch (error) {
      if (error instanceof MalformedTreeError) return { complete: false, missing: [], malformed: error.message };
      throw error;
    }
    const all = new Map<string, Digest>();
    const missing = new Map<string, Digest>();
    for (const digest of [...blobs, ...contents.directories, ...contents.files]) all.set(digestKey(digest), digest);
    for (const { digest } of contents.missingDirectories) missing.set(digestKey(digest), digest);
    for (const d of await this.cas.findMissing(context, [...all.values()], { retainUntilMs })) {
      missing.set(digestKey(d), d);
    }
    return missing.size === 0 ? { complete: true } : { complete: false, missing: [...missing.values()] };
  }

  /**
   * Re-applies retention to every live record (after a restart, when the CAS has
   * forgotten retention marks). Returns how many records were retained.
   */
  async restoreRetention(context: RequestContext): Promise<number> {
    if (!this.records.list) return 0;
    const keys = await this.records.list(context);
    let retained = 0;
    await mapLimited(keys, 4, async (key) => {
      const data = await getBuffer(context, this.records, key).catch(() => undefined);
      const record = data ? decodeRecord(data) : undefined;
      if (!record) return;
      if (record.expireAtMs !== undefined && record.expireAtMs <= this.now()) return;
      if ((await this.retain(context, record).catch(() => undefined))?.complete) retained++;
    });
    return retained;
  }
}

/** Derives the storage key of a record; its size field is unused (0). */
function storageKey(key: AssetKey): Digest {
  const identity = JSON.stringify([
    'asset-record',
    key.instanceName,
    key.kind,
    key.digestFunction.name,
    key.uri,
    key.qualifiers.map((q) => [q.name, q.value]),
  ]);
  return { hash: SHA256.createHasher().update(identity).digest('hex'), sizeBytes: 0 };
}

interface StoredRecord {
  v: 1;
  instanceName: string;
  kind: AssetKind;
  digestFunction: string;
  uri: string;
  qualifiers: Qualifier[];
  digest: Digest;
  referencesBlobs: Digest[];
  referencesDirectories: Digest[];
  expireAtMs?: number;
  updatedAtMs: number;
}

function encodeRecord(record: AssetRecord): Buffer {
  const stored: StoredRecord = {
    v: 1,
    instanceName: record.instanceName,
    kind: record.kind,
    digestFunction: record.digestFunction.name,
    uri: record.uri,
    qualifiers: record.qualifiers.map((q) => ({ name: q.name, value: q.value })),
    digest: plain(record.digest),
    referencesBlobs: record.referencesBlobs.map(plain),
    referencesDirectories: record.referencesDirectories.map(plain),
    updatedAtMs: record.updatedAtMs,
    ...(record.expireAtMs === undefined ? {} : { expireAtMs: record.expireAtMs }),
  };
  return Buffer.from(JSON.stringify(stored));
}

function decodeRecord(data: Buffer): AssetRecord | undefined {
  try {
    const stored = JSON.parse(data.toString('utf8')) as StoredRecord;
    if (stored.v !== 1) return undefined;
    const digestFunction = digestFunctionByName(stored.digestFunction);
    if (!digestFunction) return undefined;
    return {
      instanceName: stored.instanceName,
      kind: stored.kind,
      digestFunction,
      uri: stored.uri,
      qualifiers: stored.qualifiers,
      digest: stored.digest,
      referencesBlobs: stored.referencesBlobs,
      referencesDirectories: stored.referencesDirectories,
      expireAtMs: stored.expireAtMs,
      updatedAtMs: stored.updatedAtMs,
    };
  } catch {
    return undefined;
  }
}

function plain(d: Digest): Digest {
  return { hash: d.hash, sizeBytes: d.sizeBytes };
}
