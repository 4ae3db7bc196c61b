/**
 * Prometheus metrics of one Granary process, through prom-client (the maintained
 * Node.js client: text exposition format, histograms, collectors that run at
 * scrape time). Every process (server, worker, storage node) has its own
 * registry, served at /metrics on its --http-listen port; every name starts with
 * `granary_`. This file makes the registry and measures served gRPC calls; the
 * storage, farm and worker metrics live beside it, one file each.
 */
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { CallInterceptor, CallSummary } from '../grpc/callObservation.js';
import { Code } from '../util/status.js';

/** The prefix of every metric name. */
export const METRIC_PREFIX = 'granary_';

/** A registry with the process's own metrics (CPU, memory, event-loop lag, open files) as granary_process_*. */
export function createMetricsRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  return registry;
}

/**
 * Buckets for call and phase durations, in seconds: from a cache lookup (a
 * millisecond) to a long action or an Execute stream that waits for one (an hour).
 */
export const DURATION_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
];

/** The name of a status code as Prometheus labels show it (`OK`, `NOT_FOUND`). */
export function codeName(code: number): string {
  return Code[code] ?? String(code);
}

/**
 * Counts and times every served gRPC call by service, method and status code,
 * and counts message bytes in and out: a CallInterceptor for createGrpcServer.
 */
export function grpcCallMetrics(registry: Registry): CallInterceptor {
  const labelNames = ['service', 'method', 'code'] as const;
  const handled = new Counter({
    name: `${METRIC_PREFIX}grpc_server_handled_total`,
    help: 'gRPC calls served, by service, method and status code',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${METRIC_PREFIX}grpc_server_handling_seconds`,
    help: 'Time from a call arriving to its status being sent, by service, method and status code',
    labelNames,
    buckets: DURATION_BUCKETS_SECONDS,
    registers: [registry],
  });
  const received = new Counter({
    name: `${METRIC_PREFIX}grpc_server_received_bytes_total`,
    help: 'Serialized request message bytes received, by service and method',
    labelNames: ['service', 'method'] as const,
    registers: [registry],
  });
  const sent = new Counter({
    name: `${METRIC_PREFIX}grpc_server_sent_bytes_total`,
    help: 'Serialized response message bytes sent, by service and method',
    labelNames: ['service', 'method'] as const,
    registers: [registry],
  });
  // Label children bound once per service, method and code: resolving labels on every call was most of its cost here.
  interface BoundCallMetrics {
    handled: { inc(): void };
    duration: { observe(seconds: number): void };
    received: { inc(bytes: number): void };
    sent: { inc(bytes: number): void };
  }
  const bound = new Map<string, BoundCallMetrics>();
  const boundFor = (service: string, method: string, code: Code): BoundCallMetrics => {
    const key = `${service}/${method}/${code}`;
    let metrics = bound.get(key);
    if (!metrics) {
      const labels = { service, method, code: codeName(code) };
      metrics = {
        handled: handled.labels(labels),
        duration: duration.labels(labels),
        received: received.labels({ service, method }),
        sent: sent.labels({ service, method }),
      };
      bound.set(key, metrics);
    }
    return metrics;
  };
  return {
    onCallEnd: (call: CallSummary) => {
      const metrics = boundFor(call.service, call.method, call.code);
      metrics.handled.inc();
      metrics.duration.observe(call.durationMs / 1000);
      if (call.bytesIn > 0) metrics.received.inc(call.bytesIn);
      if (call.bytesOut > 0) metrics.sent.inc(call.bytesOut);
    },
  };
}
