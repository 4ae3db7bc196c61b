/**
 * One long-running process started inside a test host (a server, a worker, a database). It
 * leads its own process group, so killing it takes its children too (PostgreSQL's backends,
 * a shell's commands), which is what a machine dying looks like to the rest of the farm.
 * Its output is kept (the last part) for assertions and for failure messages.
 */
import type { ChildProcess } from 'node:child_process';

/** How a process ended: its exit code, or the signal that killed it. */
export interface HostProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const keptOutputChars = 256 * 1024;

/** A process running in a test host; see TestHost.spawn(). */
export class HostProcess {
  /** Resolves when the process (the group's leader) has exited and been reaped. */
  readonly exited: Promise<HostProcessExit>;
  private keptOutput = '';
  private exit: HostProcessExit | undefined;
  private readonly outputListeners = new Set<() => void>();

  constructor(
    /** The host's name, for messages. */
    readonly hostName: string,
    /** The command line as given (without the namespace and user prefix). */
    readonly commandLine: string,
    private readonly child: ChildProcess,
  ) {
    if (child.pid === undefined) throw new Error(`${hostName}: could not start ${commandLine}`);
    const onData = (chunk: Buffer) => {
      this.keptOutput = (this.keptOutput + chunk.toString()).slice(-keptOutputChars);
      for (const listener of this.outputListeners) listener();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        for (const listener of this.outputListeners) listener();
        resolve(this.exit);
      });
    });
  }

  /** The process id, which is also its process group id. */
  get pid(): number {
    return this.child.pid as number;
  }

  /** Whether the process has not exited yet. */
  get running(): boolean {
    return this.exit === undefined;
  }

  /** The last 256 KiB of its standard output and error, interleaved as they arrived. */
  output(): string {
    return this.keptOutput;
  }

  /**
   * Sends a signal (SIGKILL unless told otherwise) to the whole process group, or only to the
   * leader with scope 'leader' (e.g. SIGINT to the PostgreSQL postmaster for a fast shutdown).
   * Does nothing once the group is gone.
   */
  kill(signal: NodeJS.Signals = 'SIGKILL', scope: 'group' | 'leader' = 'group'): void {
    try {
      process.kill(scope === 'group' ? -this.pid : this.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  /** SIGTERM to the group, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 10_000): Promise<HostProcessExit> {
    if (!this.running) return this.exited;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Waits until the output matches `pattern` (e.g. a "listening on" line); rejects with the
   * output so far if the process exits first or `timeoutMs` passes.
   */
  waitForOutput(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const finish = (outcome: () => void) => {
        clearTimeout(timer);
        this.outputListeners.delete(check);
        outcome();
      };
      const check = () => {
        const match = pattern.exec(this.keptOutput);
        const exit = this.exit;
        if (match) finish(() => resolve(match));
        else if (exit) finish(() => reject(this.failure(`exited (${describeExit(exit)}) before printing ${pattern}`)));
      };
      const timer = setTimeout(
        () => finish(() => reject(this.failure(`did not print ${pattern} within ${timeoutMs} ms`))),
        timeoutMs,
      );
      this.outputListeners.add(check);
      check();
    });
  }

  /**
   * Resolves as `readiness` does (e.g. waitForTcp to the process's port), unless the process
   * exits first: then rejects with its output. A late failure of `readiness` is ignored.
   */
  whileRunning<T>(readiness: Promise<T>, what = 'became ready'): Promise<T> {
    readiness.catch(() => {});
    let settled = false;
    const exitedFirst = this.exited.then((exit) => {
      if (!settled) throw this.failure(`exited (${describeExit(exit)}) before it ${what}`);
      return new Promise<T>(() => {});
    });
    exitedFirst.catch(() => {});
    return Promise.race([readiness, exitedFirst]).finally(() => {
      settled = true;
    });
  }

  /** An error naming the host and command, with the output so far. */
  failure(problem: string): Error {
    return new Error(`${this.hostName}: ${this.commandLine} ${problem}; output:\n${this.keptOutput}`);
  }
}

/** 'exit code 3' or 'signal SIGKILL'. */
export function describeExit(exit: HostProcessExit): string {
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}
