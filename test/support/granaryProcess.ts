/**
 * Long-running `granary` processes (serve, worker) for end-to-end tests: start one and wait
 * for the line saying it is ready, keep its output, and stop it. Nothing started here
 * outlives the test: a process that does not get ready in time is killed, one that ignores
 * SIGTERM is killed after a grace period, and any still running when the test process
 * exits (or is ended by SIGTERM, SIGINT or SIGHUP) is killed then.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { GRANARY_BIN } from './repository.js';

/** How long a stopped process may take to exit (an embedded or busy worker drains for up to 20 s) before SIGKILL. */
const STOP_GRACE_MS = 45_000;

export interface GranaryProcess {
  /** HOST:PORT announced by the ready line (the first capture group of its pattern). */
  address: string;
  /** grpc://ADDRESS. */
  url: string;
  process: ChildProcess;
  /** Everything it wrote so far, stdout and stderr interleaved. */
  output(): string;
  /**
   * Sends SIGTERM and waits for exit, sending SIGKILL if it is still running after
   * `graceMs`; returns the exit code (null when a signal ended it).
   */
  stop(graceMs?: number): Promise<number | null>;
}

const running = new Set<ChildProcess>();
const ENDING_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** Kills what is left when the test process exits (a test that timed out or threw past its teardown). */
function killLeftovers(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** On a signal that ends the test process: kill what is left, then end as that signal would have. */
function killLeftoversAndResignal(signal: NodeJS.Signals): void {
  killLeftovers();
  stopWatching();
  process.kill(process.pid, signal);
}

function stopWatching(): void {
  process.removeListener('exit', killLeftovers);
  for (const signal of ENDING_SIGNALS) process.removeListener(signal, killLeftoversAndResignal);
}

function track(child: ChildProcess): void {
  if (running.size === 0) {
    process.once('exit', killLeftovers);
    for (const signal of ENDING_SIGNALS) process.once(signal, killLeftoversAndResignal);
  }
  running.add(child);
  child.once('exit', () => {
    running.delete(child);
    if (running.size === 0) stopWatching();
  });
}

/**
 * Starts `granary ARGS...` and waits for the line that announces its address (`ready`,
 * whose first group is the address). Rejects, with the output so far, if it exits first or
 * is not ready within `timeoutMs`; the process is killed then.
 */
export async function startGranary(
  args: string[],
  timeoutMs = 30_000,
  ready = /serving on (\S+)/,
): Promise<GranaryProcess> {
  const child = spawn(process.execPath, [GRANARY_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let output = '';
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const address = await new Promise<string>((resolveAddress, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`granary ${args[0]} was not ready within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolveAddress(match[1] ?? '');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`granary ${args[0]} exited with ${code} before it was ready:\n${output}`));
    });
  });
  return {
    address,
    url: `grpc://${address}`,
    process: child,
    output: () => output,
    stop: async (graceMs = STOP_GRACE_MS) => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
