/**
 * What a process serving storage tells operators about it, for `granary serve`
 * (through farmObservability) and `granary storage` alike: Prometheus metrics of
 * its stores (what each holds, read at scrape time; every call on each, with its
 * bytes; eviction rounds) and one log line per eviction round.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../observability/log.js';
import { storageMetrics } from '../observability/storageMetrics.js';
import type { EvictionRound } from '../storage/eviction.js';
import { formatSize } from '../util/size.js';
import type { NamedStore, StorageObservers } from './storageServer.js';

export interface StorageObservability {
  /** Hand to the server before it opens its stores. */
  readonly observers: Required<Pick<StorageObservers, 'eviction' | 'storage'>>;
  /** Reads a running store's usage at each scrape. */
  watch(store: NamedStore): void;
}

export function storageObservability(registry: Registry, logger: Logger): StorageObservability {
  const metrics = storageMetrics(registry);
  return {
    observers: {
      eviction: (store: string, round: EvictionRound) => {
        metrics.eviction(store, round);
        logger.info(`${store}: evicted ${round.blobs} blob(s), ${formatSize(round.bytes)}, to make room`, {
          event: 'eviction',
          store,
          blobs: round.blobs,
          bytes: round.bytes,
          incoming_bytes: round.incomingBytes,
          used_bytes: round.usedBytes,
          maximum_bytes: round.maximumBytes,
        });
      },
      storage: metrics.observer,
    },
    watch: (store) => metrics.watch(store),
  };
}
