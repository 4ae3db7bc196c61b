/**
 * Assembles the scheduler of one server from its settings: the policy, the store
 * (in memory, or saved to a file) and the in-process notifier. A database store
 * and notifier (several frontends, one farm) will be one more choice here.
 */
import { FileOperationStore } from './fileOperationStore.js';
import { MemoryOperationStore } from './memoryOperationStore.js';
import { InProcessNotifier } from './notifier.js';
import { OperationScheduler } from './operationScheduler.js';
import { SchedulingPolicy, type SchedulingPolicyOptions } from './schedulingPolicy.js';

export interface SchedulerSettings extends SchedulingPolicyOptions {
  /** Where to save operations; in memory only when absent. */
  stateFile?: string;
  /** A worker silent for this long loses its leases. */
  workerTimeoutMs?: number;
  /** Completed operations are forgotten after this long. */
  completedRetentionMs?: number;
  now?: () => number;
}

export async function openScheduler(settings: SchedulerSettings = {}): Promise<OperationScheduler> {
  const policy = new SchedulingPolicy(settings);
  const store = settings.stateFile
    ? await FileOperationStore.open(settings.stateFile, policy)
    : new MemoryOperationStore(policy);
  return new OperationScheduler({
    store,
    notifier: new InProcessNotifier(),
    policy,
    workerTimeoutMs: settings.workerTimeoutMs,
    completedRetentionMs: settings.completedRetentionMs,
    now: settings.now,
  });
}
