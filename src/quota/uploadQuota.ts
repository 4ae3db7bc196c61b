/**
 * Upload bytes per minute, per caller: a token bucket that holds a minute's
 * worth and refills continuously. An upload may start whenever the caller's
 * bucket is not empty and takes its whole size from it, going into debt if it
 * is larger, so a blob bigger than a minute's allowance still goes through and
 * the caller then waits until the debt is paid off. The limit is thus on the
 * average rate, never on blob size.
 */
import type { RequestContext } from '../context/requestContext.js';
import { formatSize } from '../util/size.js';
import { quotaExceeded } from '../util/status.js';
import { quotaCallerOf } from './caller.js';

interface Bucket {
  level: number;
  updatedAtMs: number;
}

/** Buckets are dropped once full again (as good as new) when this many exist. */
const PRUNE_FROM_BUCKETS = 1024;

export class UploadQuota {
  private readonly buckets = new Map<string, Bucket>();
  private readonly bytesPerMs: number;

  constructor(
    /** Bytes each caller may upload per minute, on average. */
    readonly bytesPerMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(bytesPerMinute > 0)) throw new Error('the upload quota must be positive');
    this.bytesPerMs = bytesPerMinute / 60_000;
  }

  /**
   * Takes `bytes` from the caller's allowance, or throws RESOURCE_EXHAUSTED with
   * the time until the caller may upload again (RetryInfo).
   */
  charge(context: RequestContext, bytes: number): void {
    const caller = quotaCallerOf(context);
    if (!caller || bytes <= 0) return;
    const nowMs = this.now();
    const bucket = this.refilled(caller.key, nowMs);
    if (bucket.level <= 0) {
      const retryDelayMs = Math.ceil((1 - bucket.level) / this.bytesPerMs);
      throw quotaExceeded(
        `upload quota exceeded: ${caller.label} may upload ${formatSize(this.bytesPerMinute)} per minute ` +
          `and has used it up; retry in ${Math.ceil(retryDelayMs / 1000)} s`,
        { subject: caller.key, description: `upload bytes per minute (${this.bytesPerMinute})` },
        retryDelayMs,
      );
    }
    bucket.level -= bytes;
    if (this.buckets.size >= PRUNE_FROM_BUCKETS) this.prune(nowMs);
  }

  private refilled(key: string, nowMs: number): Bucket {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = { level: this.bytesPerMinute, updatedAtMs: nowMs };
      this.buckets.set(key, bucket);
      return bucket;
    }
    const elapsedMs = Math.max(0, nowMs - bucket.updatedAtMs);
    bucket.level = Math.min(this.bytesPerMinute, bucket.level + elapsedMs * this.bytesPerMs);
    bucket.updatedAtMs = nowMs;
    return bucket;
  }

  private prune(nowMs: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.level + (nowMs - bucket.updatedAtMs) * this.bytesPerMs >= this.bytesPerMinute)
        this.buckets.delete(key);
    }
  }
}
