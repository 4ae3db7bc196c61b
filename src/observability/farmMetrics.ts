/**
 * Metrics of the execution farm. What the scheduler holds right now (queue depth
 * per platform, operations by stage, workers, busy slots) is read from its admin
 * view at scrape time; what happens (actions finishing, their phase durations,
 * action-cache hits and misses, workers lost) is counted as the server's
 * observers hear of it.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { backgroundContext } from '../context/requestContext.js';
import type { SchedulerAdmin } from '../execution/scheduler.js';
import type { ActionPhase, FinishedAction } from './finishedAction.js';
import { DURATION_BUCKETS_SECONDS, METRIC_PREFIX } from './metrics.js';

/** What the farm's observers count. */
export interface FarmMetrics {
  actionFinished(action: FinishedAction): void;
  actionCacheLookup(hit: boolean): void;
  /** A worker's session ended without it saying goodbye (expired, connection lost, process died). */
  workerLost(reason: string): void;
  /** The embedded worker was started again after it died. */
  embeddedWorkerRestarted(): void;
}

/** Registers the farm's metrics; the gauges read the scheduler's admin view at each scrape, once there is one. */
export function farmMetrics(registry: Registry, adminOf: () => SchedulerAdmin | undefined): FarmMetrics {
  // Each gauge collects on its own (prom-client reads them concurrently), from one reading per scrape.
  const queuesOnce = briefly(async () => (await adminOf()?.queues(backgroundContext())) ?? []);
  const workersOnce = briefly(async () => {
    const workers = (await adminOf()?.workers(backgroundContext())) ?? [];
    const counts = { busy: 0, idle: 0, draining: 0 };
    let busySlots = 0;
    let totalSlots = 0;
    for (const worker of workers) {
      if (worker.goneAtMs !== undefined) continue;
      const held = worker.leases.length;
      counts[worker.draining ? 'draining' : held > 0 ? 'busy' : 'idle']++;
      busySlots += held;
      totalSlots += Math.max(worker.slots ?? 1, held);
    }
    return { counts, busySlots, idleSlots: totalSlots - busySlots };
  });
  new Gauge({
    name: `${METRIC_PREFIX}queue_depth`,
    help: 'Actions waiting for a worker, by the platform properties that restrict where they run',
    labelNames: ['platform'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const queue of await queuesOnce()) this.set({ platform: queue.queueKey }, queue.queued);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}queue_oldest_age_seconds`,
    help: 'How long the longest-waiting action of each platform has waited',
    labelNames: ['platform'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const nowMs = Date.now();
      for (const queue of await queuesOnce()) {
        if (queue.oldestQueuedAtMs === undefined) continue;
        this.set({ platform: queue.queueKey }, Math.max(0, nowMs - queue.oldestQueuedAtMs) / 1000);
      }
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}operations`,
    help: 'Operations in flight by stage (QUEUED, EXECUTING)',
    labelNames: ['stage'] as const,
    registers: [registry],
    async collect() {
      const queues = await queuesOnce();
      this.set(
        { stage: 'QUEUED' },
        queues.reduce((sum, queue) => sum + queue.queued, 0),
      );
      this.set(
        { stage: 'EXECUTING' },
        queues.reduce((sum, queue) => sum + queue.executing, 0),
      );
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}workers`,
    help: 'Connected workers: busy (running something), idle, or draining',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const { counts } = await workersOnce();
      for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}worker_slots`,
    help: 'Execution slots of connected workers, busy or idle',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const { busySlots, idleSlots } = await workersOnce();
      this.set({ state: 'busy' }, busySlots);
      this.set({ state: 'idle' }, idleSlots);
    },
  });
  const finished = new Counter({
    name: `${METRIC_PREFIX}actions_finished_total`,
    help: 'Actions that finished, by status code and whether the action cache answered them',
    labelNames: ['status', 'cache_hit'] as const,
    registers: [registry],
  });
  const nonZeroExits = new Counter({
    name: `${METRIC_PREFIX}actions_nonzero_exit_total`,
    help: 'Actions that ran and exited with a non-zero code',
    registers: [registry],
  });
  const phaseSeconds = new Histogram({
    name: `${METRIC_PREFIX}action_phase_seconds`,
    help: 'Time actions spent in each phase: queued, input_fetch, execution, output_upload',
    labelNames: ['phase'] as const,
    buckets: DURATION_BUCKETS_SECONDS,
    registers: [registry],
  });
  const lookups = new Counter({
    name: `${METRIC_PREFIX}action_cache_lookups_total`,
    help: 'Action cache lookups (GetActionResult and Execute), by result: hit or miss',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const lost = new Counter({
    name: `${METRIC_PREFIX}workers_lost_total`,
    help: 'Worker sessions that ended without a goodbye, by reason; their actions went back to the queue',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const restarts = new Counter({
    name: `${METRIC_PREFIX}embedded_worker_restarts_total`,
    help: 'Times granary serve started its embedded worker again after it died',
    registers: [registry],
  });
  // Counters appear at zero from the start, so rates work before the first event.
  lookups.inc({ result: 'hit' }, 0);
  lookups.inc({ result: 'miss' }, 0);
  return {
    actionFinished: (action) => {
      finished.inc({ status: action.status, cache_hit: String(action.cacheHit) });
      if (action.exitCode !== undefined && action.exitCode !== 0) nonZeroExits.inc();
      for (const [phase, ms] of Object.entries(action.phasesMs) as [ActionPhase, number][]) {
        phaseSeconds.observe({ phase }, ms / 1000);
      }
    },
    actionCacheLookup: (hit) => lookups.inc({ result: hit ? 'hit' : 'miss' }),
    workerLost: (reason) => lost.inc({ reason }),
    embeddedWorkerRestarted: () => restarts.inc(),
  };
}

/** Shares one call's result among the callers of the next moment (one scrape), then calls again. */
function briefly<T>(fn: () => Promise<T>, forMs = 200): () => Promise<T> {
  let pending: Promise<T> | undefined;
  let takenAtMs = 0;
  return () => {
    if (!pending || Date.now() - takenAtMs > forMs) {
      takenAtMs = Date.now();
      pending = fn();
      pending.catch(() => {
        pending = undefined;
      });
    }
    return pending;
  };
}
