/**
 * Assembles the scheduler of one server from its settings: the policy, the store
 * (in memory, saved to a file, or in PostgreSQL shared with other frontends) and
 * the notifier that goes with it (in-process, or LISTEN/NOTIFY).
 */
import type { PostgresDatabase } from '../database/postgresDatabase.js';
import { FileOperationStore } from './fileOperationStore.js';
import { MemoryOperationStore } from './memoryOperationStore.js';
import { InProcessNotifier } from './notifier.js';
import { OperationScheduler } from './operationScheduler.js';
import { PostgresNotifier } from './postgresNotifier.js';
import { PostgresOperationStore } from './postgresOperationStore.js';
import { SchedulingPolicy, type SchedulingPolicyOptions } from './schedulingPolicy.js';
import type { OperationRecord } from './types.js';

export interface SchedulerSettings extends SchedulingPolicyOptions {
  /**
   * The farm's database: operations live there, shared with every frontend using it
   * (stateFile is then ignored). The caller opened it and closes it after the scheduler.
   */
  database?: PostgresDatabase;
  /** Where to save operations; in memory only when absent. */
  stateFile?: string;
  /** A worker silent for this long loses its leases. */
  workerTimeoutMs?: number;
  /** Completed operations are forgotten after this long. */
  completedRetentionMs?: number;
  now?: () => number;
  /** Told about every operation that completes (logs, metrics). */
  onCompleted?: (operation: OperationRecord) => void;
}

export async function openScheduler(settings: SchedulerSettings = {}): Promise<OperationScheduler> {
  const policy = new SchedulingPolicy(settings);
  const { database } = settings;
  const store = database
    ? new PostgresOperationStore(database, policy)
    : settings.stateFile
      ? await FileOperationStore.open(settings.stateFile, policy)
      : new MemoryOperationStore(policy);
  return new OperationScheduler({
    store,
    notifier: database ? new PostgresNotifier(database) : new InProcessNotifier(),
    policy,
    workerTimeoutMs: settings.workerTimeoutMs,
    completedRetentionMs: settings.completedRetentionMs,
    now: settings.now,
    onCompleted: settings.onCompleted,
  });
}
