/**
 * Storage metrics: what each named store holds (read from the store's own
 * `usage()` at scrape time, so there is nothing to keep in step) and what its
 * evictions removed (reported by the store as they happen). The same sink takes
 * the per-operation measurements of a storage metrics decorator (as the
 * StorageObserver the storage factory hands them to), so that every observed
 * node of a graph reports into prom-client under its name.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { StorageUsage } from '../storage/blobStore.js';
import type { EvictionRound } from '../storage/eviction.js';
import type { StorageCallEvent, StorageObserver } from '../storage/storageObserver.js';
import { DURATION_BUCKETS_SECONDS, METRIC_PREFIX } from './metrics.js';

/** The storage operations a metrics decorator reports. */
export type StorageOperation = 'find_missing' | 'get' | 'put' | 'put_batch' | 'list';

/** Where storage nodes report; prom-client behind it here, anything else in tests. */
export interface StorageMetricsSink {
  /** One call on a store: its outcome (`ok`, `miss`, `aborted` or an error code name), duration, and the bytes it moved. */
  operation(store: string, operation: StorageOperation, outcome: string, durationMs: number, bytes: number): void;
  eviction(store: string, round: EvictionRound): void;
}

/** A store whose usage is read at scrape time. */
export interface ObservedStore {
  readonly name: string;
  usage?(): StorageUsage;
}

/** The storage factory's operation names as the metrics label them. */
const OPERATION_LABELS: Record<StorageCallEvent['operation'], StorageOperation> = {
  findMissing: 'find_missing',
  get: 'get',
  put: 'put',
  putBatch: 'put_batch',
  list: 'list',
};

/** The storage metrics: the sink, `watch` to add a store whose usage is read at each scrape, and the factory's observer. */
export interface StorageMetrics extends StorageMetricsSink {
  watch(store: ObservedStore): void;
  /** Hand to the storage factory (StorageGraphOptions.observer): its calls land in `operation`. */
  readonly observer: StorageObserver;
}

/** Registers the storage metrics in `registry`. */
export function storageMetrics(registry: Registry): StorageMetrics {
  const watched: ObservedStore[] = [];
  const labelNames = ['store'] as const;
  const usageGauge = (name: string, help: string, pick: (usage: StorageUsage) => number) =>
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const store of watched) {
          const usage = store.usage?.();
          if (usage) this.set({ store: store.name }, pick(usage));
        }
      },
    });
  usageGauge('storage_used_bytes', 'Bytes held by a store', (usage) => usage.usedBytes);
  usageGauge('storage_capacity_bytes', 'Bytes a store may hold before it evicts', (usage) => usage.maximumBytes);
  usageGauge('storage_blobs', 'Blobs held by a store', (usage) => usage.blobCount);
  const evictedBlobs = new Counter({
    name: `${METRIC_PREFIX}storage_evicted_blobs_total`,
    help: 'Blobs a store evicted (least recently used first) to make room',
    labelNames,
    registers: [registry],
  });
  const evictedBytes = new Counter({
    name: `${METRIC_PREFIX}storage_evicted_bytes_total`,
    help: 'Bytes a store evicted to make room',
    labelNames,
    registers: [registry],
  });
  const evictionRounds = new Counter({
    name: `${METRIC_PREFIX}storage_eviction_rounds_total`,
    help: 'Writes that had to evict something first',
    labelNames,
    registers: [registry],
  });
  const operations = new Counter({
    name: `${METRIC_PREFIX}storage_operations_total`,
    help: 'Storage calls by store, operation and outcome',
    labelNames: ['store', 'operation', 'outcome'] as const,
    registers: [registry],
  });
  const operationSeconds = new Histogram({
    name: `${METRIC_PREFIX}storage_operation_seconds`,
    help: 'Duration of storage calls by store and operation',
    labelNames: ['store', 'operation'] as const,
    buckets: DURATION_BUCKETS_SECONDS,
    registers: [registry],
  });
  const operationBytes = new Counter({
    name: `${METRIC_PREFIX}storage_operation_bytes_total`,
    help: 'Bytes read or written by storage calls, by store and operation',
    labelNames: ['store', 'operation'] as const,
    registers: [registry],
  });
  const operation: StorageMetricsSink['operation'] = (store, name, outcome, durationMs, bytes) => {
    operations.inc({ store, operation: name, outcome });
    operationSeconds.observe({ store, operation: name }, durationMs / 1000);
    if (bytes > 0) operationBytes.inc({ store, operation: name }, bytes);
  };
  return {
    watch: (store) => {
      watched.push(store);
    },
    operation,
    observer: {
      onStorageCall: (event) =>
        operation(
          event.node,
          OPERATION_LABELS[event.operation],
          event.outcome === 'error' ? (event.errorCode ?? 'UNKNOWN') : event.outcome,
          event.durationMs,
          event.bytes,
        ),
    },
    eviction: (store, round) => {
      evictionRounds.inc({ store });
      evictedBlobs.inc({ store }, round.blobs);
      evictedBytes.inc({ store }, round.bytes);
    },
  };
}
