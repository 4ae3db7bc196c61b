/**
 * Runs one process to completion with a deadline and cancellation. Output goes
 * straight to files (bounded memory however much the command prints). The child
 * leads its own process group, and on timeout or abort the whole group gets
 * SIGTERM, then SIGKILL after a grace period; with bubblewrap's PID namespace and
 * --die-with-parent that tears down everything the command started.
 *
 * Because each command leads its own group, an unsandboxed one would outlive a
 * worker that exits without stopping it: killRunningCommands() is what a worker
 * calls on its way out, however it leaves (see workerProcess.ts).
 */
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { constants } from 'node:os';
import { nowMs } from '../util/time.js';

export interface RunRequest {
  file: string;
  args: readonly string[];
  env: Record<string, string>;
  cwd: string;
  stdoutPath: string;
  stderrPath: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Time between SIGTERM and SIGKILL; default 2 s. */
  killGraceMs?: number;
}

export interface RunOutcome {
  /** The exit status; 128 + signal number when killed by a signal; -1 when it could not start. */
  exitCode: number;
  timedOut: boolean;
  cancelled: boolean;
  /** Why the process could not be started, if it could not. */
  spawnError?: Error;
  startMs: number;
  endMs: number;
  /** Sizes of the stdout and stderr files once the command is over, when known (0: nothing to hash). */
  stdoutBytes?: number;
  stderrBytes?: number;
}

/** Process groups of the commands (and persistent sandboxes) running now. */
const runningGroups = new Set<number>();

/** Has killRunningCommands() cover a process group this module did not start; returns the undo. */
export function trackProcessGroup(groupId: number): () => void {
  runningGroups.add(groupId);
  return () => runningGroups.delete(groupId);
}

/** What a run is stopped for, once it is. */
export interface StopState {
  timedOut: boolean;
  cancelled: boolean;
  /** Ends the watch (the run is over). */
  dispose(): void;
}

/**
 * Watches a run's deadline and abort signal: on either, `kill('SIGTERM')`, then
 * `kill('SIGKILL')` after the grace period unless disposed first.
 */
export function watchForStop(
  request: Pick<RunRequest, 'timeoutMs' | 'signal' | 'killGraceMs'>,
  kill: (signal: 'SIGTERM' | 'SIGKILL') => void,
): StopState {
  let killTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    kill('SIGTERM');
    killTimer ??= setTimeout(() => kill('SIGKILL'), request.killGraceMs ?? 2000);
  };
  const deadline = setTimeout(
    () => {
      state.timedOut = true;
      stop();
    },
    Math.max(0, request.timeoutMs),
  );
  const onAbort = () => {
    state.cancelled = true;
    stop();
  };
  const state: StopState = {
    timedOut: false,
    cancelled: false,
    dispose: () => {
      clearTimeout(deadline);
      if (killTimer) clearTimeout(killTimer);
      request.signal?.removeEventListener('abort', onAbort);
    },
  };
  if (request.signal?.aborted) onAbort();
  request.signal?.addEventListener('abort', onAbort, { once: true });
  return state;
}

/**
 * SIGKILLs every command this process is running, synchronously, so it can run in
 * an 'exit' handler or just before process.exit().
 */
export function killRunningCommands(): void {
  for (const groupId of runningGroups) {
    try {
      process.kill(-groupId, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  runningGroups.clear();
}

export async function runCommand(request: RunRequest): Promise<RunOutcome> {
  // Both at once (one wait on the thread pool, not two); neither is left open if the other fails.
  const [opened, openedErr] = await Promise.allSettled([open(request.stdoutPath, 'a'), open(request.stderrPath, 'a')]);
  if (opened.status === 'rejected' || openedErr.status === 'rejected') {
    if (opened.status === 'fulfilled') await opened.value.close();
    if (openedErr.status === 'fulfilled') await openedErr.value.close();
    throw opened.status === 'rejected' ? opened.reason : (openedErr as PromiseRejectedResult).reason;
  }
  const stdout = opened.value;
  const stderr = openedErr.value;
  const startMs = nowMs();
  try {
    const outcome = await new Promise<RunOutcome>((resolve) => {
      const child = spawn(request.file, request.args, {
        cwd: request.cwd,
        env: request.env,
        stdio: ['ignore', stdout.fd, stderr.fd],
        detached: true,
      });
      const groupId = child.pid;
      if (groupId !== undefined) runningGroups.add(groupId);
      const killGroup = (signal: NodeJS.Signals) => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, signal);
        } catch {
          // Already gone.
        }
      };
      const stop = watchForStop(request, killGroup);
      let finished = false;
      const finish = (outcome: Omit<RunOutcome, 'timedOut' | 'cancelled' | 'startMs' | 'endMs'>) => {
        if (finished) return;
        finished = true;
        stop.dispose();
        const { timedOut, cancelled } = stop;
        // Leftovers of an unsandboxed command that did not leave the group die with it;
        // report only once they are gone, so "cancelled" means "stopped".
        killGroup('SIGKILL');
        if (groupId !== undefined) runningGroups.delete(groupId);
        const report = () => resolve({ ...outcome, timedOut, cancelled, startMs, endMs: nowMs() });
        // After a normal exit the sandbox's namespaces take a second or more to be torn
        // down by the kernel; only a stopped command waits for that.
        if (timedOut || cancelled) void waitForGroupExit(child.pid).then(report);
        else report();
      };
      child.once('error', (error) => finish({ exitCode: -1, spawnError: error }));
      child.once('exit', (code, signal) => {
        const signalNumber = signal ? (constants.signals[signal] ?? 0) : 0;
        finish({ exitCode: code ?? 128 + signalNumber });
      });
    });
    const [stdoutStats, stderrStats] = await Promise.all([stdout.stat(), stderr.stat()]);
    return { ...outcome, stdoutBytes: stdoutStats.size, stderrBytes: stderrStats.size };
  } finally {
    await stdout.close();
    await stderr.close();
  }
}

/** Polls until no process of the group is left (bounded: a stuck process cannot hang the worker). */
async function waitForGroupExit(groupId: number | undefined): Promise<void> {
  if (groupId === undefined) return;
  for (let i = 0; i < 600; i++) {
    try {
      process.kill(-groupId, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
