/**
 * The embedded worker of `granary serve`, supervised: a child process running
 * `granary worker` (the same code as a standalone worker), tied to the server by
 * an IPC channel (it drains when asked over it, and stops at once when the
 * channel closes because the server died). When it dies on its own, the farm
 * forgets its session at once (its actions go back to the queue) and it is
 * started again after a backoff that doubles from 1 s up to 30 s, and resets once
 * a worker has stayed up for a minute.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { errorMessage, type Logger } from '../observability/log.js';
import { Backoff } from '../util/backoff.js';
import { DRAIN_MESSAGE } from './shutdownRequests.js';

/** The bot id of the embedded worker, as the farm's logs, metrics and admin view show it. */
export const EMBEDDED_BOT_ID = 'embedded';

export interface EmbeddedWorkerOptions {
  /** The farm, grpc://HOST:PORT. */
  readonly server: string;
  readonly slots: number;
  readonly workDirectory: string;
  readonly sandbox: string;
  readonly platform: readonly string[];
  readonly drainTimeoutMs: number;
  /** More `granary worker` flags. */
  readonly extraArguments?: readonly string[];
  /** More environment variables of the worker (e.g. its credential, kept off the command line). */
  readonly environment?: Readonly<Record<string, string>>;
  readonly log: Logger;
  /** Called as soon as a worker process ends unasked (before the restart). */
  onExit?(description: string): void;
  /** Called when a new process is started after one died. */
  onRestart?(): void;
  /** Backoff bounds, for tests. */
  readonly firstBackoffMs?: number;
  readonly longestBackoffMs?: number;
  /** A worker that stayed up this long resets the backoff. */
  readonly stableAfterMs?: number;
  /** The command to run instead of `node bin/granary.js worker`, for tests. */
  readonly command?: readonly string[];
}

/** Extra time, past the drain timeout, for the worker to stop what is left and hand it back. */
const WORKER_STOP_MARGIN_MS = 15_000;

export class EmbeddedWorker {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private startedAtMs = 0;
  private restarts = 0;

  constructor(private readonly options: EmbeddedWorkerOptions) {
    // No jitter: one supervisor restarting one child has no crowd to spread.
    this.backoff = new Backoff({
      firstMs: options.firstBackoffMs ?? 1000,
      maximumMs: options.longestBackoffMs ?? 30_000,
      jitter: 0,
    });
  }

  /** The running process's id, if one runs. */
  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  /** How many times a dead worker was started again. */
  get restartCount(): number {
    return this.restarts;
  }

  start(): void {
    this.stopping = false;
    this.launch();
  }

  /**
   * Asks the worker to drain (it may already be, if a terminal's Ctrl-C reached it
   * too), stops restarting it, and waits for it to exit while the farm still serves it.
   */
  stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolveExit) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), this.options.drainTimeoutMs + WORKER_STOP_MARGIN_MS);
      child.once('exit', () => {
        clearTimeout(timer);
        resolveExit();
      });
      const signal = () => child.kill('SIGTERM');
      if (child.connected) child.send(DRAIN_MESSAGE, (error) => error && signal());
      else signal();
    });
  }

  private launch(): void {
    const options = this.options;
    const [program, ...prefix] = options.command ?? [
      process.execPath,
      fileURLToPath(new URL('../../../bin/granary.js', import.meta.url)),
      'worker',
    ];
    const args = [
      ...prefix,
      '--server',
      options.server,
      '--slots',
      String(options.slots),
      '--work-dir',
      options.workDirectory,
      '--sandbox',
      options.sandbox,
      '--bot-id',
      EMBEDDED_BOT_ID,
      '--drain-timeout',
      `${options.drainTimeoutMs}ms`,
      ...(options.extraArguments ?? []),
    ];
    for (const p of options.platform) args.push('--platform', p);
    // The IPC channel is the lifeline: the worker stops at once when it closes, which
    // the kernel does when this process ends, however it ends (SIGKILL included).
    const env = options.environment ? { ...process.env, ...options.environment } : process.env;
    const child = spawn(program as string, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
    this.child = child;
    this.startedAtMs = Date.now();
    child.on('error', (error) => options.log.error(`cannot start the embedded worker: ${errorMessage(error)}`));
    child.on('exit', (code, signal) => this.exited(child, code, signal));
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child || this.stopping) return;
    const description = signal ? `killed by ${signal}` : `exit code ${code}`;
    this.options.onExit?.(description);
    if (Date.now() - this.startedAtMs >= (this.options.stableAfterMs ?? 60_000)) this.backoff.reset();
    const delayMs = this.backoff.next();
    this.options.log.warn(
      `embedded worker ${description}; starting it again in ${formatSeconds(delayMs)}`,
      { event: 'embedded_worker_exited', exit: description, restart_in_ms: delayMs },
      { fieldsInText: false },
    );
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      this.restarts++;
      this.options.onRestart?.();
      this.launch();
    }, delayMs);
  }
}

function formatSeconds(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
