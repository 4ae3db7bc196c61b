/**
 * What `granary serve` tells operators, in one place: the metrics registry (gRPC
 * calls, storage, the scheduler, finished actions) and the structured log lines
 * (one per finished action, per worker joining or leaving, per eviction round).
 * It hands the farm its observers before start, then reads the running farm.
 */
import type { Registry } from 'prom-client';
import type { BotLeaveReason, BotSessionEvents, BotSessionInfo } from '../execution/botSessions.js';
import type { OperationRecord } from '../execution/types.js';
import type { CallInterceptor } from '../grpc/callObservation.js';
import { type FarmMetrics, farmMetrics } from '../observability/farmMetrics.js';
import { describeFinishedAction } from '../observability/finishedAction.js';
import { log as defaultLog, type Logger } from '../observability/log.js';
import { createMetricsRegistry, grpcCallMetrics } from '../observability/metrics.js';
import type { FarmObservers, RunningFarm } from './farm.js';
import { storageObservability } from './storageObservability.js';
import type { StorageObservers } from './storageServer.js';

export interface FarmObservability {
  readonly registry: Registry;
  readonly callInterceptors: readonly CallInterceptor[];
  readonly storageObservers: StorageObservers;
  readonly farmObservers: FarmObservers;
  readonly metrics: FarmMetrics;
  /** Starts reading the running farm (its stores' usage, its scheduler's admin view). */
  attach(farm: RunningFarm): void;
}

export function farmObservability(options: { log?: Logger } = {}): FarmObservability {
  const logger = options.log ?? defaultLog;
  const registry = createMetricsRegistry();
  const storage = storageObservability(registry, logger);
  let farm: RunningFarm | undefined;
  const metrics = farmMetrics(registry, () => farm?.admin);
  const botSessions: BotSessionEvents = {
    joined: (session) => logger.info(`worker ${session.botId} joined`, workerFields('worker_joined', session)),
    left: (session, reason, leasesReturned) => {
      if (reason !== 'terminated' && reason !== 'replaced') metrics.workerLost(reason);
      logger.info(`worker ${session.botId} left (${describeLeave(reason)})`, {
        ...workerFields('worker_left', session),
        reason,
        actions_requeued: leasesReturned,
      });
    },
  };
  return {
    registry,
    callInterceptors: [grpcCallMetrics(registry)],
    storageObservers: {
      ...storage.observers,
      actionCacheLookup: (hit: boolean) => metrics.actionCacheLookup(hit),
    },
    farmObservers: {
      operationCompleted: (operation: OperationRecord) => {
        const finished = describeFinishedAction(operation);
        metrics.actionFinished(finished);
        logger.info('action finished', finished.fields);
      },
      botSessions,
    },
    metrics,
    attach: (running) => {
      farm = running;
      for (const store of running.stores) storage.watch(store);
    },
  };
}

function workerFields(event: string, session: BotSessionInfo) {
  return {
    event,
    worker: session.botId,
    session: session.name,
    slots: session.slots,
    peer: session.peer,
    platform: session.properties.map((p) => `${p.name}=${p.value}`),
  };
}

function describeLeave(reason: BotLeaveReason): string {
  switch (reason) {
    case 'expired':
      return 'stopped reporting';
    case 'disconnected':
      return 'its connection closed';
    case 'replaced':
      return 'it started a new session';
    case 'terminated':
      return 'it shut down';
    case 'process-exited':
      return 'its process exited';
  }
}
