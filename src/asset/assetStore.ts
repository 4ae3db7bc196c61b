/**
 * Asset records of the Remote Asset API: (instance name, kind, digest function,
 * URI, canonical qualifier set) -> a blob or directory tree in the CAS, with the
 * blobs and trees it references, an optional expiry and the time it was pushed
 * (or its download from origin started).
 *
 * Records live in a RecordStore (assetRecords keeps them in a BlobStore under
 * derived keys, as action results are). A record is only served while everything
 * it names is still in the CAS: the blob, or every directory and file of the
 * tree, plus every referenced blob and tree, as the shared CompletenessChecker
 * decides. Otherwise it is a miss, never a dangling answer.
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
import { type Digest, type DigestFunction, digestFunctionByName } from '../digest/digest.js';
import type { Qualifier } from '../gen/build/bazel/remote/asset/v1/remote_asset.js';
import { BlobRecordStore } from '../records/blobRecordStore.js';
import { type Completeness, CompletenessChecker } from '../records/completeness.js';
import type { RecordCodec, RecordPage, RecordStore } from '../records/recordStore.js';
import type { BlobStore } from '../storage/blobStore.js';
import { mapLimited } from '../util/concurrency.js';
import { Code, StatusError } from '../util/status.js';
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
/** Records whose content is checked at once while restoring retention. */
const RESTORE_CONCURRENCY = 4;

/** What a content check found. */
export type ContentState = Completeness;

export class AssetStore {
  readonly retentionMs: number;
  private readonly now: () => number;
  private readonly completeness: CompletenessChecker;

  constructor(
    private readonly records: RecordStore<AssetRecord>,
    cas: BlobStore,
    options: AssetStoreOptions = {},
  ) {
    this.completeness = new CompletenessChecker(cas, { walkConcurrency: WALK_CONCURRENCY });
    this.retentionMs = options.retentionMs ?? DEFAULT_ASSET_RETENTION_MS;
    this.now = options.now ?? Date.now;
  }

  /** The stored record of a key, expired or not, or undefined. */
  async read(context: RequestContext, key: AssetKey): Promise<AssetRecord | undefined> {
    return this.records.get(context, assetRecordKey(key));
  }

  async write(context: RequestContext, record: AssetRecord): Promise<void> {
    await this.records.put(context, assetRecordKey(record), record);
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
    return this.completeness.check(context, { blobs, directories: roots, digestFunction: fn }, retainUntilMs);
  }

  /**
   * Re-applies retention to every live record (after a restart, when the CAS has
   * forgotten retention marks). Returns how many records were retained.
   */
  async restoreRetention(context: RequestContext): Promise<number> {
    let retained = 0;
    let pageToken: string | undefined;
    do {
      let page: RecordPage<AssetRecord>;
      try {
        page = await this.records.list(context, { pageToken });
      } catch (error) {
        // A store that cannot list has nothing to restore.
        if (error instanceof StatusError && error.code === Code.UNIMPLEMENTED) return retained;
        throw error;
      }
      await mapLimited(page.records, RESTORE_CONCURRENCY, async ({ value: record }) => {
        if (record.expireAtMs !== undefined && record.expireAtMs <= this.now()) return;
        if ((await this.retain(context, record).catch(() => undefined))?.complete) retained++;
      });
      pageToken = page.nextPageToken;
    } while (pageToken !== undefined);
    return retained;
  }
}

/**
 * The record key of an asset: its whole identity (its SHA-256 is the BlobStore
 * key records have always had). Keys of one instance share the prefix
 * assetRecordKeyPrefix(instanceName).
 */
export function assetRecordKey(key: AssetKey): string {
  return JSON.stringify([
    'asset-record',
    key.instanceName,
    key.kind,
    key.digestFunction.name,
    key.uri,
    key.qualifiers.map((q) => [q.name, q.value]),
  ]);
}

/** The prefix shared by the record keys of one instance's assets. */
export function assetRecordKeyPrefix(instanceName: string): string {
  return `${JSON.stringify(['asset-record', instanceName]).slice(0, -1)},`;
}

/** Asset records as stored: versioned JSON carrying the record's identity. */
export const assetRecordCodec: RecordCodec<AssetRecord> = {
  encode: (record) => encodeRecord(record),
  decode: (data) => decodeRecord(data),
  keyOf: (record) => assetRecordKey(record),
};

/** Asset records kept in a BlobStore (the all-in-one server's disk store). */
export function assetRecords(blobs: BlobStore): RecordStore<AssetRecord> {
  return new BlobRecordStore(blobs, assetRecordCodec);
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
