/**
 * Storage use and action-cache hit rate over time, for the web UI's charts: a
 * sample of every store's usage and of the cumulative cache lookups, taken at a
 * fixed interval and kept in a bounded ring (by default one per 30 s for 12 h).
 * The metrics endpoint has the same figures, but a UI on a farm without a
 * Prometheus server still wants a picture of the last hours.
 */
import type { StorageUsage } from '../storage/blobStore.js';

/** One moment: each store's usage and the lookups counted since the server started. */
export interface UsageSample {
  readonly atMs: number;
  readonly stores: Readonly<Record<string, StorageUsage>>;
  readonly cacheHits: number;
  readonly cacheMisses: number;
}

/** A store whose usage is charted. */
export interface MeasuredStore {
  readonly name: string;
  usage?(): StorageUsage;
}

export interface UsageHistoryOptions {
  /** The stores to measure (asked at each sample: the server may open them after the history starts counting). */
  readonly stores: () => readonly MeasuredStore[];
  readonly intervalMs?: number;
  readonly maximumSamples?: number;
  readonly now?: () => number;
}

export class UsageHistory {
  private readonly samples: UsageSample[] = [];
  private readonly intervalMs: number;
  private readonly maximumSamples: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private cacheHits = 0;
  private cacheMisses = 0;

  constructor(private readonly options: UsageHistoryOptions) {
    this.intervalMs = options.intervalMs ?? 30_000;
    this.maximumSamples = options.maximumSamples ?? 1440;
    this.now = options.now ?? Date.now;
  }

  /** Counts an action-cache lookup (the server's storage observer calls this). */
  countLookup(hit: boolean): void {
    if (hit) this.cacheHits++;
    else this.cacheMisses++;
  }

  /** Takes a sample now and then every interval, until stop(). */
  start(): void {
    if (this.timer) return;
    this.record();
    this.timer = setInterval(() => this.record(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes and keeps a sample. */
  record(): UsageSample {
    const sample = this.current();
    this.samples.push(sample);
    if (this.samples.length > this.maximumSamples) this.samples.splice(0, this.samples.length - this.maximumSamples);
    return sample;
  }

  /** A sample of this moment, not kept. */
  current(): UsageSample {
    const stores: Record<string, StorageUsage> = {};
    for (const store of this.options.stores()) {
      const usage = store.usage?.();
      if (usage) stores[store.name] = { ...usage };
    }
    return { atMs: this.now(), stores, cacheHits: this.cacheHits, cacheMisses: this.cacheMisses };
  }

  /** The kept samples, oldest first, followed by one of this moment. */
  history(): UsageSample[] {
    return [...this.samples, this.current()];
  }
}
