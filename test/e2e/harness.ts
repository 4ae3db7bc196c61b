/**
 * End-to-end helpers: start real `granary` processes on loopback, run real
 * clients (Bazel) in scratch directories, and clean everything up.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist-test/test/e2e). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const GRANARY_BIN = join(REPO_ROOT, 'bin', 'granary.js');

export function scratchDirectory(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `granary-${prefix}-`));
}

export interface GranaryProcess {
  address: string;
  url: string;
  process: ChildProcess;
  output(): string;
  /** Sends SIGTERM and waits for exit; returns the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `granary ARGS...` and waits for the line that announces its address. */
export async function startGranary(
  args: string[],
  timeoutMs = 30_000,
  ready = /serving on (\S+)/,
): Promise<GranaryProcess> {
  const child = spawn(process.execPath, [GRANARY_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  const address = await new Promise<string>((resolveAddress, reject) => {
    const timer = setTimeout(() => reject(new Error(`granary did not start in time:\n${output}`)), timeoutMs);
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
      reject(new Error(`granary exited with ${code} before serving:\n${output}`));
    });
  });
  return {
    address,
    url: `grpc://${address}`,
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

/**
 * Whether a test needing an external program should run: it always runs in CI
 * (where a missing program is a failure), and is skipped locally when absent.
 */
export function requireCommand(name: string): string | false {
  if (hasCommand(name) || process.env.CI) return false;
  return `${name} is not installed`;
}

/** A copy of a fixture workspace in a scratch directory. */
export function copyFixture(name: string, into: string): string {
  const target = join(into, name);
  cpSync(join(REPO_ROOT, 'test', 'e2e', 'fixtures', name), target, { recursive: true });
  return target;
}

export interface BazelRun {
  status: number | null;
  output: string;
}

/** Runs Bazel in batch mode with its own output root. */
export function bazel(workspace: string, outputRoot: string, command: string, flags: string[]): BazelRun {
  const result = spawnSync(
    'bazel',
    [
      '--batch',
      `--output_user_root=${outputRoot}`,
      command,
      '--nosandbox_debug',
      '--color=no',
      '--curses=no',
      ...flags,
    ],
    { cwd: workspace, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', HOME: outputRoot }, maxBuffer: 64 * 1024 * 1024 },
  );
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Like bazel(), without blocking the event loop (for tests that act during a build). */
export function bazelAsync(workspace: string, outputRoot: string, command: string, flags: string[]): Promise<BazelRun> {
  return new Promise((resolveRun) => {
    const child = spawn(
      'bazel',
      [
        '--batch',
        `--output_user_root=${outputRoot}`,
        command,
        '--nosandbox_debug',
        '--color=no',
        '--curses=no',
        ...flags,
      ],
      { cwd: workspace, env: { PATH: '/usr/bin:/bin', HOME: outputRoot } },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.on('close', (status) => resolveRun({ status, output }));
  });
}

/** Parses Bazel's "INFO: N processes: ..." summary into counts by kind. */
export function processSummary(output: string): Record<string, number> {
  const lines = [...output.matchAll(/INFO: (\d+) process(?:es)?(?:: (.*))?\./g)];
  const last = lines.at(-1);
  const counts: Record<string, number> = {};
  if (!last) return counts;
  counts.total = Number(last[1]);
  for (const part of (last[2] ?? '').split(',')) {
    const match = /(\d+) (.+)/.exec(part.trim());
    if (match) counts[match[2] as string] = Number(match[1]);
  }
  return counts;
}

export function run(command: string, args: string[], cwd: string): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8' });
}

export function removeQuietly(path: string): void {
  rmSync(path, { recursive: true, force: true });
}
