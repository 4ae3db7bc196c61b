/**
 * Starts `granary serve` (the all-in-one farm: storage, scheduler and the
 * embedded worker) as a child process on a free loopback port, for the
 * benchmarks that measure what a user runs. Node flags such as --cpu-prof
 * apply to the server process (the worker is its own child process).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const GRANARY = fileURLToPath(new URL('../../bin/granary.js', import.meta.url));
const STARTUP_TIMEOUT_MS = 60_000;
/** Time for the embedded worker to connect before the first action is sent. */
const WORKER_CONNECT_MS = 1500;
/** The embedded worker logs every action it starts; a benchmark runs thousands. */
const PER_ACTION_LINE = /^granary worker: executing [0-9a-f]+\/\d+$/;

export interface GranaryServeOptions {
  dataDirectory: string;
  /** `--sandbox` of the embedded worker (auto, bubblewrap or none); granary's default when absent. */
  sandbox?: string;
  /** Extra node flags for the server process, e.g. --cpu-prof. */
  nodeArguments?: readonly string[];
  /** `--workers`: execution slots of the embedded worker; granary's default (one per core) when absent. */
  workers?: number;
  /**
   * Start the server in a session of its own (setsid), as the other servers of
   * the side-by-side runs are started. With Linux's autogroup scheduling
   * (kernel.sched_autogroup_enabled=1, the default here) each session's
   * processes share one CPU share: left in the benchmark's session, Granary, its
   * worker and every action it runs shared one share with the load client and the
   * benchmark, while each other server had a share of its own. That alone made
   * the trivial-action figure 4 to 5 times lower (0.6-0.9 against 3.1-3.8
   * actions/s, same code, same minute). Default false: Bazel's local build,
   * which the remote build is compared with, runs in the benchmark's session.
   */
  ownSession?: boolean;
  /** More `granary serve` flags, e.g. ['--max-size', '100GiB']. */
  extraArguments?: readonly string[];
  /** How long the server may take to start serving; 60 s when absent (a big segment store takes longer). */
  startupTimeoutMs?: number;
  /** bin/granary.js of another build (to compare builds on the same data); this checkout's when absent. */
  granaryPath?: string;
}

export interface GranaryServe {
  address: string;
  /** Its HTTP listener (/metrics, /healthz), e.g. http://127.0.0.1:34567, when it printed one. */
  httpUrl?: string;
  /** The server's process ID (its embedded worker, if any, is a child of it). */
  pid: number;
  /** The command line, for the report. */
  command: string;
  close(): Promise<void>;
}

export async function startGranaryServe(options: GranaryServeOptions): Promise<GranaryServe> {
  const serveArguments = ['serve', '--listen', '127.0.0.1:0', '--data', options.dataDirectory];
  if (options.sandbox) serveArguments.push('--sandbox', options.sandbox);
  if (options.workers !== undefined) serveArguments.push('--workers', String(options.workers));
  serveArguments.push(...(options.extraArguments ?? []));
  const nodeArguments = options.nodeArguments ?? [];
  const granary = options.granaryPath ?? GRANARY;
  const child: ChildProcess = spawn(process.execPath, [...nodeArguments, granary, ...serveArguments], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownSession ?? false,
  });
  forwardStderr(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const printed: { httpUrl?: string } = {};
    const address = await waitForAddress(child, options.startupTimeoutMs ?? STARTUP_TIMEOUT_MS, printed);
    // Without an embedded worker there is nothing to wait for.
    if (options.workers !== 0) await new Promise((resolve) => setTimeout(resolve, WORKER_CONNECT_MS));
    return {
      address,
      get httpUrl() {
        return printed.httpUrl;
      },
      pid: child.pid as number,
      command: ['node', ...nodeArguments, 'bin/granary.js', ...serveArguments].join(' '),
      close: () => stopChild(child, exited),
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/** SIGTERM, then SIGKILL if the process has not exited within 20 s. */
async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

/** Passes the server's and worker's stderr through, except the worker's line per action. */
function forwardStderr(child: ChildProcess): void {
  const lines = createInterface({ input: child.stderr as NodeJS.ReadableStream });
  lines.on('line', (line) => {
    if (!PER_ACTION_LINE.test(line)) console.error(line);
  });
}

/** Resolves with the gRPC address; records the HTTP listener's URL in `printed` when the server prints it. */
function waitForAddress(child: ChildProcess, timeoutMs: number, printed: { httpUrl?: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const timer = setTimeout(
      () => reject(new Error(`granary serve did not start within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    let found = false;
    lines.on('line', (line) => {
      // Keep draining stdout so the child never blocks on a full pipe.
      const http = /metrics and health on (http\S+)/.exec(line);
      if (http) printed.httpUrl = http[1] as string;
      const match = /serving on (\S+:\d+)/.exec(line);
      if (match && !found) {
        found = true;
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`granary serve exited before serving (code ${code}, signal ${signal})`));
    });
  });
}

export interface GranaryWorkerOptions {
  /** The farm, grpc://HOST:PORT. */
  server: string;
  slots: number;
  workDirectory: string;
  /** In a session of its own, as startGranaryServe's ownSession. */
  ownSession?: boolean;
}

export interface GranaryWorker {
  pid: number;
  close(): Promise<void>;
}

/**
 * Starts a separate `granary worker` process, as a farm with workers on other
 * hosts runs them (no shared CAS: inputs are fetched over gRPC).
 */
export function startGranaryWorker(options: GranaryWorkerOptions): GranaryWorker {
  const workerArguments = [
    'worker',
    '--server',
    options.server,
    '--slots',
    String(options.slots),
    '--work-dir',
    options.workDirectory,
  ];
  const child: ChildProcess = spawn(process.execPath, [GRANARY, ...workerArguments], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: options.ownSession ?? false,
  });
  forwardStderr(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid as number,
    close: () => stopChild(child, exited),
  };
}
