/**
 * Remembers for a short while which blobs a store reported present, so the
 * existence checks that dominate a remote cache's traffic (Bazel asks about
 * every input and output) skip a slow backend (remote nodes, shards) when they
 * were just answered. Only presence is cached, never absence, and only for
 * `ttlMs`: a blob evicted meanwhile can be reported present for at most that
 * long (the same bound clients already live with between an existence check
 * and a read). A check asking for retention is answered from the cache only
 * when the retention already granted falls short by less than `ttlMs`.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey } from '../digest/digest.js';
import { type Blob, type BlobStore, type FindMissingOptions, ForwardingBlobStore } from './blobStore.js';

/** Entries kept at most; the oldest are forgotten first. */
const DEFAULT_MAXIMUM_ENTRIES = 1_000_000;

interface Presence {
  /** Until when the answer may be reused (epoch ms). */
  validUntilMs: number;
  /** Retention the backend granted with that answer (epoch ms; 0 for none). */
  retainedUntilMs: number;
}

export class ExistenceCachingBlobStore extends ForwardingBlobStore {
  private readonly present = new Map<string, Presence>();

  constructor(
    inner: BlobStore,
    private readonly ttlMs: number,
    private readonly maximumEntries = DEFAULT_MAXIMUM_ENTRIES,
    private readonly now: () => number = Date.now,
  ) {
    super(inner);
  }

  override async findMissing(
    context: RequestContext,
    digests: readonly Digest[],
    options: FindMissingOptions = {},
  ): Promise<Digest[]> {
    const now = this.now();
    const wantedRetentionMs = options.retainUntilMs ?? 0;
    const unknown = digests.filter((digest) => {
      const presence = this.present.get(digestKey(digest));
      return !(presence && presence.validUntilMs > now && presence.retainedUntilMs >= wantedRetentionMs - this.ttlMs);
    });
    if (unknown.length === 0) return [];
    const missing = await this.inner.findMissing(context, unknown, options);
    const missingKeys = new Set(missing.map(digestKey));
    for (const digest of unknown) {
      const key = digestKey(digest);
      if (missingKeys.has(key)) this.present.delete(key);
      else this.remember(key, { validUntilMs: now + this.ttlMs, retainedUntilMs: wantedRetentionMs });
    }
    return missing;
  }

  override async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    const blob = await this.inner.get(context, digest);
    if (!blob) this.present.delete(digestKey(digest));
    return blob;
  }

  private remember(key: string, presence: Presence): void {
    this.present.delete(key);
    this.present.set(key, presence);
    if (this.present.size > this.maximumEntries) {
      const oldest = this.present.keys().next().value;
      if (oldest !== undefined) this.present.delete(oldest);
    }
  }
}
