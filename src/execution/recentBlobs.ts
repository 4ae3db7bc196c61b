/**
 * Small CAS blobs the execution path read lately (Actions, Commands, input
 * Directories), kept in memory for the next step that needs them: Execute reads
 * an action's Action and Command to check them, and the lease built for it
 * moments later sends the same Action and Command (plus the input tree) to the
 * worker. Without this each was read from the store twice, a disk read each.
 *
 * Only what the CAS returned goes in (the CAS verifies blobs before they are
 * visible), keyed by digest, so an entry is exactly the blob; bounded in bytes,
 * least recently used out first.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey } from '../digest/digest.js';
import { type BlobStore, getBuffer } from '../storage/blobStore.js';

/** Blobs larger than this are never kept (messages are small; big blobs stay in the store). */
const MAXIMUM_ENTRY_BYTES = 64 * 1024;

export class RecentBlobs {
  /** Least recently used first (a Map keeps insertion order). */
  private readonly entries = new Map<string, Buffer>();
  private totalBytes = 0;

  constructor(private readonly maximumBytes = 16 * 1024 * 1024) {}

  /** The blob from memory, else from `cas` (then kept); undefined when the CAS lacks it. */
  async read(context: RequestContext, cas: BlobStore, digest: Digest): Promise<Buffer | undefined> {
    const key = digestKey(digest);
    const kept = this.entries.get(key);
    if (kept !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, kept);
      return kept;
    }
    const data = await getBuffer(context, cas, digest);
    if (data !== undefined) this.keep(digest, data);
    return data;
  }

  /** Keeps a blob just read from the CAS (by a reader that checks presence in the CAS itself). */
  keep(digest: Digest, data: Buffer): void {
    const key = digestKey(digest);
    if (data.length > MAXIMUM_ENTRY_BYTES || this.entries.has(key)) return;
    this.entries.set(key, data);
    this.totalBytes += data.length;
    for (const [oldest, buffer] of this.entries) {
      if (this.totalBytes <= this.maximumBytes) break;
      this.entries.delete(oldest);
      this.totalBytes -= buffer.length;
    }
  }
}
