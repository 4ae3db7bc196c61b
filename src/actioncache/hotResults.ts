/**
 * Action results recently found complete, kept in memory so that a hit does not
 * read the record from its store and check every output against the CAS again
 * (the record read and the completeness check were most of a hit's cost).
 *
 * A remembered verdict goes stale when the CAS loses a referenced blob or the
 * record is replaced, so an entry is forgotten:
 * - after `ttlMs` (the bound for changes nobody reports: a blob deleted outside
 *   the store, a remote CAS, another frontend's write to shared records);
 * - when its key is written (`forget`), and all entries when the CAS reports an
 *   eviction or a referenced blob is found missing (`forgetAll`); a lookup that
 *   started before such a change does not remember its verdict (`generation`).
 * The completeness check that admitted an entry also retained its blobs for the
 * action cache's grace period, so a remembered hit's outputs stay retained for
 * at least that period less `ttlMs`.
 */

/** One remembered verdict. */
interface HotEntry<Value> {
  readonly value: Value;
  readonly sizeBytes: number;
  readonly checkedAtMs: number;
}

export interface HotResultsOptions {
  /** How long a verdict is reused; 0 turns the memory off. */
  ttlMs: number;
  /** Bound on the remembered results' encoded sizes; the least recently used go first. */
  maximumBytes: number;
  now?: () => number;
}

export class HotResults<Value> {
  private readonly entries = new Map<string, HotEntry<Value>>();
  private totalBytes = 0;
  private changes = 0;
  private readonly now: () => number;

  constructor(private readonly options: HotResultsOptions) {
    this.now = options.now ?? Date.now;
  }

  /** A counter of invalidations: pass the value read before a lookup to `remember`. */
  get generation(): number {
    return this.changes;
  }

  /** The remembered value under `key`, if its verdict is still fresh. */
  get(key: string): Value | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.now() - entry.checkedAtMs >= this.options.ttlMs) {
      this.drop(key, entry);
      return undefined;
    }
    // Most recently used last, so the Map's first entry is the one to drop when full.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /**
   * Remembers a value found complete by a lookup that started at `generation`
   * and `checkedAtMs`; ignored when something was invalidated since.
   */
  remember(key: string, value: Value, sizeBytes: number, generation: number, checkedAtMs: number): void {
    if (generation !== this.changes || this.options.ttlMs <= 0 || sizeBytes > this.options.maximumBytes) return;
    const previous = this.entries.get(key);
    if (previous) this.drop(key, previous);
    this.entries.set(key, { value, sizeBytes, checkedAtMs });
    this.totalBytes += sizeBytes;
    for (const [oldestKey, oldest] of this.entries) {
      if (this.totalBytes <= this.options.maximumBytes) break;
      this.drop(oldestKey, oldest);
    }
  }

  /** Forgets one key (its record was written). */
  forget(key: string): void {
    this.changes++;
    const entry = this.entries.get(key);
    if (entry) this.drop(key, entry);
  }

  /** Forgets everything (the CAS lost blobs). */
  forgetAll(): void {
    this.changes++;
    this.entries.clear();
    this.totalBytes = 0;
  }

  /** How many results are remembered (for tests and diagnostics). */
  get size(): number {
    return this.entries.size;
  }

  private drop(key: string, entry: HotEntry<Value>): void {
    this.entries.delete(key);
    this.totalBytes -= entry.sizeBytes;
  }
}
