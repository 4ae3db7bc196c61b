/**
 * How the scheduler wakes whoever waits on a change: watchers of an operation
 * (Execute and WaitExecution streams, WaitOperation) and idle bot sessions
 * long-polling for work. The in-process notifier delivers at once, with the
 * changed record; the PostgreSQL notifier (postgresNotifier.ts) also delivers the
 * names and versions other frontends announce, and listeners read the record then.
 */

import type { OperationRecord } from './types.js';

/** News of a changed operation. `operation` is the record as changed, when the notifier has it. */
export interface OperationChange {
  name: string;
  version: number;
  operation?: OperationRecord;
}

export interface Notifier {
  /** Tells the operation's subscribers that it changed. */
  publishOperation(change: OperationChange): void;
  /** Calls `listener` for each later change of the operation until the returned function is called. */
  subscribeOperation(name: string, listener: (change: OperationChange) => void): () => void;
  /** Tells waiting workers that work may be available, or that a lease they hold was cancelled. */
  publishWork(): void;
  /** Resolves at the next publishWork, after timeoutMs, or when the signal aborts. */
  waitForWork(timeoutMs: number, signal: AbortSignal): Promise<void>;
  /** Wakes every waiter; nothing waits afterwards. */
  close(): void;
}

/** The notifier of one process. */
export class InProcessNotifier implements Notifier {
  private readonly subscribers = new Map<string, Set<(change: OperationChange) => void>>();
  private readonly workWaiters = new Set<() => void>();
  private closed = false;

  publishOperation(change: OperationChange): void {
    const listeners = this.subscribers.get(change.name);
    if (listeners) for (const listener of [...listeners]) listener(change);
  }

  subscribeOperation(name: string, listener: (change: OperationChange) => void): () => void {
    let set = this.subscribers.get(name);
    if (!set) {
      set = new Set();
      this.subscribers.set(name, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.subscribers.get(name) === set) this.subscribers.delete(name);
    };
  }

  publishWork(): void {
    for (const wake of [...this.workWaiters]) wake();
  }

  /** The operations someone here subscribes to (to re-read them after news may have been missed). */
  subscribedOperations(): string[] {
    return [...this.subscribers.keys()];
  }

  waitForWork(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.workWaiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.workWaiters.add(done);
      signal.addEventListener('abort', done);
    });
  }

  close(): void {
    this.closed = true;
    this.publishWork();
  }
}
