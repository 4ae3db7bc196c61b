/**
 * The farm server: the storage services plus remote execution (Execution,
 * Operations, and the Bots service that workers connect to). The parts are built
 * in one direction: the scheduler, then the worker-facing queue that records
 * results in the action cache before completing, then the services over them.
 * With a database, the server is one frontend of a farm: the scheduler's state,
 * the action cache and the asset records are in PostgreSQL, shared with the others.
 */
import { join } from 'node:path';
import { backgroundContext } from '../context/requestContext.js';
import { PostgresDatabase } from '../database/postgresDatabase.js';
import { SHA256, SUPPORTED_DIGEST_FUNCTIONS } from '../digest/digest.js';
import { ActionResultRecorder } from '../execution/actionResultRecorder.js';
import { type BotSessionEvents, BotSessions } from '../execution/botSessions.js';
import { DEFAULT_EXECUTION_OPTIONS, type ExecutionOptions, ExecutionService } from '../execution/executionService.js';
import { collectLeaseBlobs, DEFAULT_LEASE_BLOB_LIMITS } from '../execution/leaseBlobs.js';
import { openScheduler } from '../execution/openScheduler.js';
import type { OperationScheduler } from '../execution/operationScheduler.js';
import type { PlatformMatchRules } from '../execution/platformMatch.js';
import { type OperationQuotas, QuotaClientQueue } from '../execution/quotaClientQueue.js';
import { RecentBlobs } from '../execution/recentBlobs.js';
import { RecordingWorkerQueue } from '../execution/recordingWorkerQueue.js';
import type { SchedulerAdmin } from '../execution/scheduler.js';
import type { OperationRecord } from '../execution/types.js';
import {
  Action,
  ExecutionService as ExecutionServiceDefinition,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { PublishBuildEventService } from '../gen/google/devtools/build/v1/publish_build_event.js';
import { BotsService } from '../gen/google/devtools/remoteworkers/v1test2/bots.js';
import { OperationsService } from '../gen/google/longrunning/operations.js';
import { botsServer } from '../grpc/botsServer.js';
import { buildEventServer } from '../grpc/buildEventServer.js';
import { executionServer, operationsServer } from '../grpc/executionServer.js';
import type { InvocationStore } from '../invocations/invocationStore.js';
import { type RunningServer, type StorageServerConfig, startStorageServer } from './storageServer.js';

export interface FarmConfig extends StorageServerConfig {
  /**
   * The farm's PostgreSQL: the scheduler's state (operations, the queue, workers), the
   * action cache and the Remote Asset records live there, shared by every frontend
   * using the same database, which are then one farm. stateDirectory, actionCache and
   * asset are ignored.
   */
  database?: {
    /** postgresql://USER@HOST:PORT/DATABASE */
    url: string;
    /** Bound on the action cache, and separately on the asset records, in the database. */
    maximumRecordBytes: number;
    /** How long a call waits for an unavailable database before failing with UNAVAILABLE. */
    retryWindowMs?: number;
  };
  /** Directory for scheduler state; in memory only when absent. */
  stateDirectory?: string;
  execution?: Partial<ExecutionOptions>;
  /** A worker silent for this long loses its leases. */
  workerTimeoutMs?: number;
  /** How platform properties are matched, per property name (exact when not named). */
  platformMatch?: PlatformMatchRules;
  /** Per-caller limits on Execute operations; none when absent. */
  operationQuotas?: OperationQuotas;
  /** What the farm's logs and metrics hear of: finished operations, workers coming and going. */
  farmObservers?: FarmObservers;
  /** Serve the Build Event Service (Bazel's --bes_backend), keeping invocations here. */
  buildEvents?: InvocationStore;
}

/** Observers of the execution farm; called synchronously, they must not throw. */
export interface FarmObservers {
  operationCompleted?(operation: OperationRecord): void;
  botSessions?: BotSessionEvents;
}

export interface RunningFarm extends RunningServer {
  /** The scheduler itself (tests look inside it). */
  scheduler: OperationScheduler;
  /** What operators, metrics and a UI read: workers and their leases, queues per platform, operations; drain. */
  admin: SchedulerAdmin;
  /**
   * Ends the sessions of the bot named `botId` now, its actions going back to the
   * queue: for a server that saw the bot's process end.
   */
  forgetBot(botId: string): Promise<number>;
}

const EXECUTION_SERVICE = 'build.bazel.remote.execution.v2.Execution';

export async function startFarm(config: FarmConfig): Promise<RunningFarm> {
  const database = config.database
    ? await PostgresDatabase.open({ url: config.database.url, retryWindowMs: config.database.retryWindowMs })
    : undefined;
  try {
    const farm = await startFarmOn(config, database);
    return database ? { ...farm, close: () => farm.close().finally(() => database.close()) } : farm;
  } catch (error) {
    await database?.close();
    throw error;
  }
}

async function startFarmOn(config: FarmConfig, database: PostgresDatabase | undefined): Promise<RunningFarm> {
  let scheduler: OperationScheduler | undefined;
  let sessions: BotSessions | undefined;
  const observers = config.farmObservers ?? {};
  const storageConfig: StorageServerConfig =
    database && config.database
      ? { ...config, sharedRecords: { database, maximumSizeBytes: config.database.maximumRecordBytes } }
      : config;
  const server = await startStorageServer(storageConfig, async (grpc, { cas, actionCache }) => {
    const opened = await openScheduler({
      database,
      stateFile: config.stateDirectory ? join(config.stateDirectory, 'operations.json') : undefined,
      workerTimeoutMs: config.workerTimeoutMs,
      platformMatch: config.platformMatch,
      onCompleted: observers.operationCompleted && ((operation) => observers.operationCompleted?.(operation)),
    });
    scheduler = opened;
    const workerQueue = new RecordingWorkerQueue(opened, new ActionResultRecorder(actionCache));
    const quotas = config.operationQuotas;
    const clients =
      quotas?.concurrent !== undefined || quotas?.queued !== undefined
        ? new QuotaClientQueue(opened, quotas, (request) => opened.policy.dedupeKey(request))
        : opened;
    // Execute's Action and Command reads, kept for the leases that send them on.
    const recent = new RecentBlobs();
    const service = new ExecutionService(
      cas,
      actionCache,
      clients,
      { ...DEFAULT_EXECUTION_OPTIONS, ...config.execution },
      recent,
    );
    const botSessions = new BotSessions(workerQueue, {
      sessionTimeoutMs: config.workerTimeoutMs,
      events: observers.botSessions,
      // Leases carry the Action with the timeout decided at Execute (see ExecutionService).
      actionOf: async (context, request) => {
        const data = await recent.read(context, cas, request.actionDigest);
        return data ? Action.decode(data) : undefined;
      },
      blobsOf: (context, action) =>
        collectLeaseBlobs(context, cas, action, DEFAULT_LEASE_BLOB_LIMITS, (digest) =>
          recent.read(context, cas, digest),
        ),
    });
    grpc.addService(ExecutionServiceDefinition, executionServer(service, opened));
    grpc.addService(OperationsService, operationsServer(opened));
    grpc.addService(BotsService, botsServer(botSessions));
    if (config.buildEvents) grpc.addService(PublishBuildEventService, buildEventServer(config.buildEvents));
    sessions = botSessions;
    return {
      execution: {
        digestFunction: SHA256.value as number,
        execEnabled: true,
        executionPriorityCapabilities: undefined,
        supportedNodeProperties: [],
        digestFunctions: SUPPORTED_DIGEST_FUNCTIONS.map((f) => f.value),
      },
      // Execution is SERVING while some connected worker takes work; the storage services regardless.
      health: async (service: string) => {
        if (service !== EXECUTION_SERVICE) return undefined;
        const workers = await opened.workers(backgroundContext());
        return workers.some((w) => w.goneAtMs === undefined && !w.draining) ? 'SERVING' : 'NOT_SERVING';
      },
      close: async () => {
        botSessions.close();
        await opened.close();
      },
    };
  });
  return {
    ...server,
    scheduler: scheduler as OperationScheduler,
    admin: scheduler as OperationScheduler,
    forgetBot: (botId) => sessions?.forgetBot(botId, 'process-exited') ?? Promise.resolve(0),
  };
}
