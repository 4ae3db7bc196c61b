/**
 * Size accounting and least-recently-used ordering shared by the memory and disk
 * backends. A Map keeps insertion order, so re-inserting on access makes its first
 * entry the least recently used. Entries may be retained until a time, and those
 * are skipped by eviction.
 */
import type { Digest } from '../digest/digest.js';
import { resourceExhausted } from '../util/status.js';

export interface LruEntry {
  sizeBytes: number;
  retainUntilMs: number;
}

export class LruIndex {
  private readonly entries = new Map<string, LruEntry>();
  private totalBytes = 0;

  constructor(
    readonly maximumSizeBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  get sizeBytes(): number {
    return this.totalBytes;
  }

  get count(): number {
    return this.entries.size;
  }

  sizeOf(key: string): number | undefined {
    return this.entries.get(key)?.sizeBytes;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Marks a key as just used; optionally protects it from eviction until a time. */
  touch(key: string, retainUntilMs = 0): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.entries.delete(key);
    if (retainUntilMs > entry.retainUntilMs) entry.retainUntilMs = retainUntilMs;
    this.entries.set(key, entry);
    return true;
  }

  /** Adds (or refreshes) a key as most recently used. */
  add(key: string, sizeBytes: number, retainUntilMs = 0): void {
    const previous = this.entries.get(key);
    if (previous) {
      this.totalBytes -= previous.sizeBytes;
      this.entries.delete(key);
    }
    this.entries.set(key, { sizeBytes, retainUntilMs: Math.max(retainUntilMs, previous?.retainUntilMs ?? 0) });
    this.totalBytes += sizeBytes;
  }

  remove(key: string): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.entries.delete(key);
    this.totalBytes -= entry.sizeBytes;
    return true;
  }

  /**
   * Chooses least recently used entries to evict so that `incomingBytes` more fit,
   * removes them from the index and returns their keys. Throws RESOURCE_EXHAUSTED
   * when the space cannot be freed without evicting retained entries.
   * `protectedKey` is the key about to be added: it is never evicted, and any copy
   * of it already stored counts as space that the new one replaces.
   */
  makeRoom(incomingBytes: number, protectedKey?: string): string[] {
    if (incomingBytes > this.maximumSizeBytes) {
      throw resourceExhausted(
        `blob of ${incomingBytes} bytes exceeds the storage limit of ${this.maximumSizeBytes} bytes`,
      );
    }
    const replacedBytes = protectedKey === undefined ? 0 : (this.entries.get(protectedKey)?.sizeBytes ?? 0);
    const needed = this.totalBytes - replacedBytes + incomingBytes - this.maximumSizeBytes;
    if (needed <= 0) return [];
    const now = this.now();
    const victims: string[] = [];
    let freed = 0;
    for (const [key, entry] of this.entries) {
      if (freed >= needed) break;
      if (entry.retainUntilMs > now || key === protectedKey) continue;
      victims.push(key);
      freed += entry.sizeBytes;
    }
    if (freed < needed) {
      throw resourceExhausted(
        `storage is full (${this.totalBytes} of ${this.maximumSizeBytes} bytes) and the remaining blobs are retained for running builds`,
      );
    }
    for (const key of victims) this.remove(key);
    return victims;
  }

  /** Every key as the digest it was made from ("hash-size"), least recently used first. */
  digests(): Digest[] {
    const digests: Digest[] = [];
    for (const key of this.entries.keys()) {
      const dash = key.lastIndexOf('-');
      digests.push({ hash: key.slice(0, dash), sizeBytes: Number(key.slice(dash + 1)) });
    }
    return digests;
  }

  /** Keys from least to most recently used, with sizes. */
  *snapshot(): Generator<[string, number]> {
    for (const [key, entry] of this.entries) yield [key, entry.sizeBytes];
  }
}
