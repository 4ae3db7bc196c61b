/**
 * Small keyed records (action cache entries, Remote Asset records) in the farm's
 * PostgreSQL, so that every frontend reads what any of them wrote, at once: a
 * worker's result recorded through one frontend is a cache hit through another,
 * and a record outlives the loss of any frontend or storage node. One table holds
 * every kind of record, each kind under its own namespace.
 *
 * It is a BlobStore leaf for those stores, which key records by derived digests
 * (so nothing here checks content against the key). Reads refresh a record's
 * recency (at most once an hour, to spare the database a write per read); one
 * frontend at a time evicts the least recently used records of a namespace past
 * its size bound.
 */
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import type { PostgresDatabase } from '../database/postgresDatabase.js';
import { ADVISORY_LOCKS } from '../database/schema.js';
import { type Digest, isEmptyDigest } from '../digest/digest.js';
import type { Blob, BlobStore, BlobWriter } from './blobStore.js';
import { bufferBlob } from './memoryBlobStore.js';

export interface PostgresRecordStoreOptions {
  /** Which kind of record, e.g. `action-cache` or `asset`. */
  namespace: string;
  /** Bound on the records' total size; the least recently used beyond it are evicted. */
  maximumSizeBytes: number;
  /** How often eviction runs; default 60 s. */
  evictionIntervalMs?: number;
  now?: () => number;
}

/** A read refreshes a record's recency only when it is older than this. */
const RECENCY_REFRESH_MS = 60 * 60_000;

export class PostgresRecordStore implements BlobStore {
  private readonly namespace: string;
  private readonly now: () => number;
  private readonly evictionTimer: NodeJS.Timeout;
  private evicting: Promise<void> | undefined;

  constructor(
    private readonly database: PostgresDatabase,
    private readonly options: PostgresRecordStoreOptions,
  ) {
    this.namespace = options.namespace;
    this.now = options.now ?? Date.now;
    this.evictionTimer = setInterval(() => {
      this.evicting ??= this.evict()
        .then(() => {})
        .catch((error: unknown) => database.log(`granary: evicting ${this.namespace} records failed: ${error}`))
        .finally(() => {
          this.evicting = undefined;
        });
    }, options.evictionIntervalMs ?? 60_000);
    this.evictionTimer.unref();
  }

  async findMissing(context: RequestContext, digests: readonly Digest[]): Promise<Digest[]> {
    digests = digests.filter((digest) => !isEmptyDigest(digest));
    if (digests.length === 0) return [];
    const rows = await this.database.query<{ key: string }>(
      context,
      'SELECT key FROM granary_records WHERE namespace = $1 AND key = ANY($2::text[])',
      [this.namespace, digests.map(recordKey)],
    );
    const present = new Set(rows.map((row) => row.key));
    return digests.filter((digest) => !present.has(recordKey(digest)));
  }

  async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    if (isEmptyDigest(digest)) return bufferBlob(Buffer.alloc(0));
    const key = recordKey(digest);
    const [row] = await this.database.query<{ value: Buffer; accessed_at_ms: string }>(
      context,
      'SELECT value, accessed_at_ms FROM granary_records WHERE namespace = $1 AND key = $2',
      [this.namespace, key],
    );
    if (!row) return undefined;
    const nowMs = this.now();
    if (Number(row.accessed_at_ms) < nowMs - RECENCY_REFRESH_MS) {
      // Best effort: a lost refresh only makes the record a little likelier to be evicted.
      await this.database
        .query(context, 'UPDATE granary_records SET accessed_at_ms = $3 WHERE namespace = $1 AND key = $2', [
          this.namespace,
          key,
          nowMs,
        ])
        .catch(() => {});
    }
    return bufferBlob(row.value);
  }

  async put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    const chunks: Buffer[] = [];
    let finished = false;
    return {
      write: async (chunk) => {
        if (finished) throw new Error('write after commit or abort');
        chunks.push(chunk);
      },
      commit: async () => {
        if (finished) throw new Error('commit after commit or abort');
        finished = true;
        const value = Buffer.concat(chunks);
        await this.database.query(
          context,
          `INSERT INTO granary_records (namespace, key, value, size_bytes, accessed_at_ms) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (namespace, key) DO UPDATE
             SET value = EXCLUDED.value, size_bytes = EXCLUDED.size_bytes, accessed_at_ms = EXCLUDED.accessed_at_ms`,
          [this.namespace, recordKey(digest), value, value.length, this.now()],
        );
      },
      abort: async () => {
        finished = true;
        chunks.length = 0;
      },
    };
  }

  async list(context: RequestContext): Promise<Digest[]> {
    const rows = await this.database.query<{ key: string }>(
      context,
      'SELECT key FROM granary_records WHERE namespace = $1',
      [this.namespace],
    );
    return rows.map((row) => digestOfKey(row.key));
  }

  /**
   * Deletes the least recently used records beyond the size bound. Any frontend may
   * call it; one at a time does the work.
   */
  async evict(): Promise<number> {
    return this.database.transaction(backgroundContext(), async (tx) => {
      const [lock] = await tx.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1, $2) AS locked', [
        ADVISORY_LOCKS.evictRecords,
        namespaceLockKey(this.namespace),
      ]);
      if (!lock?.locked) return 0;
      const deleted = await tx.query(
        `DELETE FROM granary_records r
          USING (SELECT key FROM (
                   SELECT key, sum(size_bytes) OVER (ORDER BY accessed_at_ms DESC, key) AS running
                     FROM granary_records WHERE namespace = $1) ranked
                  WHERE running > $2) doomed
          WHERE r.namespace = $1 AND r.key = doomed.key
          RETURNING r.key`,
        [this.namespace, this.options.maximumSizeBytes],
      );
      return deleted.length;
    });
  }

  /** Stops evicting; the database belongs to whoever opened it. */
  async close(): Promise<void> {
    clearInterval(this.evictionTimer);
    await this.evicting;
  }
}

function recordKey(digest: Digest): string {
  return `${digest.hash}/${digest.sizeBytes}`;
}

function digestOfKey(key: string): Digest {
  const slash = key.lastIndexOf('/');
  return { hash: key.slice(0, slash), sizeBytes: Number(key.slice(slash + 1)) };
}

/** A 32-bit number per namespace, the second half of its eviction lock's key. */
function namespaceLockKey(namespace: string): number {
  let hash = 0;
  for (const char of namespace) hash = (Math.imul(hash, 31) + (char.codePointAt(0) ?? 0)) | 0;
  return hash;
}
