/**
 * Size accounting and least-recently-used ordering shared by the memory and disk
 * backends. Entries may be retained until a time, and those are skipped by
 * eviction.
 */
import type { Digest } from '../digest/digest.js';
import { resourceExhausted } from '../util/status.js';

export interface LruEntry {
  sizeBytes: number;
  retainUntilMs: number;
}

/** An entry in the recency list (least recently used at the head). */
interface Node extends LruEntry {
  readonly key: string;
  older: Node | undefined;
  newer: Node | undefined;
}

/**
 * The keys in a Map for lookup, and in a doubly linked list for order: a touch
 * (every presence check of every digest) relinks two nodes instead of deleting
 * and re-inserting a Map entry, which hashed the key twice and left tombstones.
 */
export class LruIndex {
  private readonly entries = new Map<string, Node>();
  private oldest: Node | undefined;
  private newest: Node | undefined;
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
    const node = this.entries.get(key);
    if (!node) return false;
    if (retainUntilMs > node.retainUntilMs) node.retainUntilMs = retainUntilMs;
    if (node !== this.newest) {
      this.unlink(node);
      this.append(node);
    }
    return true;
  }

  /** Adds (or refreshes) a key as most recently used. */
  add(key: string, sizeBytes: number, retainUntilMs = 0): void {
    const previous = this.entries.get(key);
    if (previous) {
      this.totalBytes -= previous.sizeBytes;
      this.entries.delete(key);
      this.unlink(previous);
    }
    const node: Node = {
      key,
      sizeBytes,
      retainUntilMs: Math.max(retainUntilMs, previous?.retainUntilMs ?? 0),
      older: undefined,
      newer: undefined,
    };
    this.entries.set(key, node);
    this.append(node);
    this.totalBytes += sizeBytes;
  }

  remove(key: string): boolean {
    const node = this.entries.get(key);
    if (!node) return false;
    this.entries.delete(key);
    this.unlink(node);
    this.totalBytes -= node.sizeBytes;
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
    for (let node = this.oldest; node && freed < needed; node = node.newer) {
      if (node.retainUntilMs > now || node.key === protectedKey) continue;
      victims.push(node.key);
      freed += node.sizeBytes;
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
    for (let node = this.oldest; node; node = node.newer) {
      const key = node.key;
      const dash = key.lastIndexOf('-');
      digests.push({ hash: key.slice(0, dash), sizeBytes: Number(key.slice(dash + 1)) });
    }
    return digests;
  }

  /** Keys from least to most recently used, with sizes. */
  *snapshot(): Generator<[string, number]> {
    for (let node = this.oldest; node; node = node.newer) yield [node.key, node.sizeBytes];
  }

  private unlink(node: Node): void {
    if (node.older) node.older.newer = node.newer;
    else this.oldest = node.newer;
    if (node.newer) node.newer.older = node.older;
    else this.newest = node.older;
    node.older = undefined;
    node.newer = undefined;
  }

  private append(node: Node): void {
    node.older = this.newest;
    if (this.newest) this.newest.newer = node;
    else this.oldest = node;
    this.newest = node;
  }
}
