/**
 * Metrics of one worker process (`granary worker --http-listen`): its slots, the
 * actions it ran and how they ended, the time each phase took here, sandbox
 * failures, its local blob cache, and its connection to the farm.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { StorageUsage } from '../storage/blobStore.js';
import { Code } from '../util/status.js';
import { workerPhasesMs } from './finishedAction.js';
import { codeName, DURATION_BUCKETS_SECONDS, METRIC_PREFIX } from './metrics.js';

/** What the worker reads at scrape time. */
export interface WorkerState {
  readonly slots: number;
  busySlots(): number;
  connected(): boolean;
  cacheUsage(): StorageUsage;
}

export interface WorkerMetrics {
  /** One lease's outcome, as the worker reports it to the farm. */
  actionFinished(response: ExecuteResponse): void;
  /** The bot lost or could not reach the farm (it retries). */
  connectionFailed(): void;
}

/** A response whose failure came from setting up the sandbox rather than from the action. */
export function isSandboxFailure(response: ExecuteResponse): boolean {
  const status = response.status;
  if (!status || status.code === Code.OK) return false;
  if (status.code === Code.DEADLINE_EXCEEDED || status.code === Code.CANCELLED) return false;
  return /sandbox|bubblewrap|bwrap/i.test(status.message);
}

export function workerMetrics(registry: Registry, state: WorkerState): WorkerMetrics {
  new Gauge({
    name: `${METRIC_PREFIX}worker_slots`,
    help: "This worker's execution slots, busy or idle",
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const busy = Math.min(state.slots, state.busySlots());
      this.set({ state: 'busy' }, busy);
      this.set({ state: 'idle' }, state.slots - busy);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}worker_connected`,
    help: '1 while the worker holds a bot session with the farm',
    registers: [registry],
    collect() {
      this.set(state.connected() ? 1 : 0);
    },
  });
  const cacheGauge = (name: string, help: string, pick: (usage: StorageUsage) => number) =>
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      registers: [registry],
      collect() {
        this.set(pick(state.cacheUsage()));
      },
    });
  cacheGauge('worker_cache_used_bytes', "Bytes in the worker's local blob cache", (usage) => usage.usedBytes);
  cacheGauge('worker_cache_capacity_bytes', "Bound of the worker's local blob cache", (usage) => usage.maximumBytes);
  cacheGauge('worker_cache_blobs', "Blobs in the worker's local blob cache", (usage) => usage.blobCount);
  const actions = new Counter({
    name: `${METRIC_PREFIX}worker_actions_total`,
    help: 'Actions this worker finished, by status code',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const nonZero = new Counter({
    name: `${METRIC_PREFIX}worker_actions_nonzero_exit_total`,
    help: 'Actions that ran here and exited with a non-zero code',
    registers: [registry],
  });
  const sandboxFailures = new Counter({
    name: `${METRIC_PREFIX}worker_sandbox_failures_total`,
    help: 'Actions that failed because their sandbox could not be set up',
    registers: [registry],
  });
  const phaseSeconds = new Histogram({
    name: `${METRIC_PREFIX}worker_action_phase_seconds`,
    help: 'Time actions spent here in each phase: input_fetch, execution, output_upload',
    labelNames: ['phase'] as const,
    buckets: DURATION_BUCKETS_SECONDS,
    registers: [registry],
  });
  const connectionFailures = new Counter({
    name: `${METRIC_PREFIX}worker_connection_failures_total`,
    help: 'Times the worker lost or could not reach the farm (it retries with backoff)',
    registers: [registry],
  });
  actions.inc({ status: 'OK' }, 0);
  return {
    actionFinished: (response) => {
      actions.inc({ status: codeName(response.status?.code ?? Code.OK) });
      const exitCode = response.result?.exitCode;
      if (exitCode !== undefined && exitCode !== 0) nonZero.inc();
      if (isSandboxFailure(response)) sandboxFailures.inc();
      // The worker's own phases; the queue time is the server's to measure.
      const phasesMs = workerPhasesMs(response.result?.executionMetadata);
      for (const [phase, ms] of Object.entries(phasesMs)) {
        phaseSeconds.observe({ phase }, ms / 1000);
      }
    },
    connectionFailed: () => connectionFailures.inc(),
  };
}
