/**
 * The farm server: the storage services plus remote execution (Execution,
 * Operations, and the Bots service that workers connect to).
 */
import { join } from 'node:path';
import { SHA256, SUPPORTED_DIGEST_FUNCTIONS } from '../digest/digest.js';
import { BotSessions } from '../execution/botSessions.js';
import { EmbeddedScheduler } from '../execution/embeddedScheduler.js';
import { DEFAULT_EXECUTION_OPTIONS, type ExecutionOptions, ExecutionService } from '../execution/executionService.js';
import { ExecutionService as ExecutionServiceDefinition } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { BotsService } from '../gen/google/devtools/remoteworkers/v1test2/bots.js';
import { OperationsService } from '../gen/google/longrunning/operations.js';
import { botsServer } from '../grpc/botsServer.js';
import { executionServer, operationsServer } from '../grpc/executionServer.js';
import { type RunningServer, type StorageServerConfig, startStorageServer } from './storageServer.js';

export interface FarmConfig extends StorageServerConfig {
  /** Directory for scheduler state; in memory only when absent. */
  stateDirectory?: string;
  execution?: Partial<ExecutionOptions>;
  /** A worker silent for this long loses its leases. */
  workerTimeoutMs?: number;
}

export interface RunningFarm extends RunningServer {
  scheduler: EmbeddedScheduler;
}

export async function startFarm(config: FarmConfig): Promise<RunningFarm> {
  let scheduler: EmbeddedScheduler | undefined;
  const server = await startStorageServer(config, async (grpc, { cas, actionCache }) => {
    let service: ExecutionService | undefined;
    scheduler = await EmbeddedScheduler.open({
      stateFile: config.stateDirectory ? join(config.stateDirectory, 'operations.json') : undefined,
      workerTimeoutMs: config.workerTimeoutMs,
      onCompleted: (operation) => service?.onCompleted(operation) ?? Promise.resolve(),
    });
    const queue = scheduler;
    service = new ExecutionService(cas, actionCache, queue, { ...DEFAULT_EXECUTION_OPTIONS, ...config.execution });
    const sessions = new BotSessions(queue, {
      sessionTimeoutMs: config.workerTimeoutMs,
      lookup: (name) => queue.get(name),
    });
    grpc.addService(ExecutionServiceDefinition, executionServer(service, queue));
    grpc.addService(OperationsService, operationsServer(queue));
    grpc.addService(BotsService, botsServer(sessions));
    return {
      execution: {
        digestFunction: SHA256.value as number,
        execEnabled: true,
        executionPriorityCapabilities: undefined,
        supportedNodeProperties: [],
        digestFunctions: SUPPORTED_DIGEST_FUNCTIONS.map((f) => f.value),
      },
      close: async () => {
        sessions.close();
        await queue.close();
      },
    };
  });
  return { ...server, scheduler: scheduler as EmbeddedScheduler };
}
