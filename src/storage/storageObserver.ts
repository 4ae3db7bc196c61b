/**
 * What a metrics exporter sees of the storage graph: one event per finished
 * storage call of a named node (the `metrics` decorator reports them). Kept free
 * of any metrics library: an exporter (Prometheus, logs, tests) implements
 * StorageObserver and is handed to the storage factory.
 */

/** The calls a node reports. */
export type StorageOperation = 'findMissing' | 'get' | 'put' | 'putBatch' | 'list';

/** One finished call. */
export interface StorageCallEvent {
  /** The node's name (a `metrics` node's name, or its path in the configuration). */
  readonly node: string;
  readonly operation: StorageOperation;
  /**
   * ok; miss (get of an absent blob); error (the call, a read of the blob, or a
   * write failed); aborted (a write the caller abandoned).
   */
  readonly outcome: 'ok' | 'miss' | 'error' | 'aborted';
  /** Start of the call to its end (for get and put: to the end of the stream or the commit). */
  readonly durationMs: number;
  /** Bytes read or written. */
  readonly bytes: number;
  /** Digests asked about (findMissing), blobs written (putBatch), keys listed (list); 1 otherwise. */
  readonly digests: number;
  /** Of findMissing: how many were missing. */
  readonly missing?: number;
  /** The gRPC status code name of an error (e.g. RESOURCE_EXHAUSTED), when outcome is error. */
  readonly errorCode?: string;
}

/** Receives every event; must be cheap and must not throw. */
export interface StorageObserver {
  onStorageCall(event: StorageCallEvent): void;
}

/** Totals of one node and operation. */
export interface StorageCounters {
  calls: number;
  errors: number;
  misses: number;
  bytes: number;
  digests: number;
  totalDurationMs: number;
  maximumDurationMs: number;
}

/**
 * Sums events per node and operation in memory: for tests, `granary` diagnostics
 * and as the simplest exporter to read from.
 */
export class CountingStorageObserver implements StorageObserver {
  private readonly totals = new Map<string, StorageCounters>();

  onStorageCall(event: StorageCallEvent): void {
    const key = `${event.node}\0${event.operation}`;
    let counters = this.totals.get(key);
    if (!counters) {
      counters = { calls: 0, errors: 0, misses: 0, bytes: 0, digests: 0, totalDurationMs: 0, maximumDurationMs: 0 };
      this.totals.set(key, counters);
    }
    counters.calls++;
    if (event.outcome === 'error') counters.errors++;
    if (event.outcome === 'miss') counters.misses++;
    counters.bytes += event.bytes;
    counters.digests += event.digests;
    counters.totalDurationMs += event.durationMs;
    counters.maximumDurationMs = Math.max(counters.maximumDurationMs, event.durationMs);
  }

  /** The totals of a node's operation (all zero when it was never called). */
  counters(node: string, operation: StorageOperation): StorageCounters {
    return (
      this.totals.get(`${node}\0${operation}`) ?? {
        calls: 0,
        errors: 0,
        misses: 0,
        bytes: 0,
        digests: 0,
        totalDurationMs: 0,
        maximumDurationMs: 0,
      }
    );
  }

  /** Every node that reported something. */
  nodes(): string[] {
    return [...new Set([...this.totals.keys()].map((key) => key.slice(0, key.indexOf('\0'))))];
  }
}
