/**
 * The Debian sid root with modern REAPI clients (Bazel 7.7.1, BuildStream 2.8.1,
 * BuildBox 1.4.30, siso), made by make-sidroot.sh and entered with in-sidroot.sh
 * (a private mount namespace plus pivot_root, so user namespaces and thus
 * bubblewrap and Bazel's linux-sandbox keep working inside; the network is the
 * host's, so 127.0.0.1 reaches a Granary server started on the host).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { bazelArguments } from './bazel.js';
import { REPO_ROOT } from './repository.js';

/** test/e2e/sidroot: make-sidroot.sh and in-sidroot.sh. */
export const SIDROOT_SCRIPTS = join(REPO_ROOT, 'test', 'e2e', 'sidroot');
const IN_SIDROOT = join(SIDROOT_SCRIPTS, 'in-sidroot.sh');

export interface SidrootSetup {
  /** The root directory, when it exists. */
  root: string;
  /** A reason to skip tests (only outside CI), or false. */
  skip: string | false;
  /** Why the root could not be made (CI fails the tests with it). */
  error: string;
}

/**
 * Makes the sid root, or reuses the cached one (about 3 minutes and 1.7 GB the
 * first time on a machine; instant afterwards). Outside CI, tests are skipped when
 * the root cannot be made (not root, no debootstrap, no mirror); in CI they fail.
 */
export function prepareSidroot(): SidrootSetup {
  const fail = (why: string): SidrootSetup =>
    process.env.CI ? { root: '', skip: false, error: why } : { root: '', skip: why, error: why };
  if (process.getuid?.() !== 0) return fail('the sid root needs root (debootstrap, mount namespaces)');
  const started = Date.now();
  const result = spawnSync('bash', [join(SIDROOT_SCRIPTS, 'make-sidroot.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30 * 60_000,
  });
  const root = /^root=(.+)$/m.exec(result.stdout ?? '')?.[1];
  if (result.status !== 0 || !root) {
    return fail(`make-sidroot.sh failed (${result.status ?? result.signal}):\n${result.stderr}`);
  }
  if (Date.now() - started > 10_000) process.stderr.write(result.stderr);
  return { root, skip: false, error: '' };
}

export interface SidrootOptions {
  /** Host directories bound read-write at the same paths inside. */
  binds?: string[];
  /** Working directory inside (default: /). */
  cwd?: string;
  /** Environment of the command (PATH is set inside). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface SidrootRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout then stderr. */
  output: string;
}

function invocation(root: string, argv: string[], options: SidrootOptions) {
  const env: Record<string, string> = {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    LANG: 'C.UTF-8',
    ...options.env,
    SIDROOT_BIND: (options.binds ?? []).join(':'),
    SIDROOT_CWD: options.cwd ?? '/',
  };
  return { args: [IN_SIDROOT, root, ...argv], env };
}

/** Runs a command inside the root and waits for it. */
export function inSidroot(root: string, argv: string[], options: SidrootOptions = {}): SidrootRun {
  const { args, env } = invocation(root, argv, options);
  const result = spawnSync('bash', args, {
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: options.timeoutMs ?? 10 * 60_000,
  });
  const stdout = result.stdout ?? '';
  const stderr = result.stderr ?? '';
  return { status: result.status, stdout, stderr, output: `${stdout}${stderr}` };
}

/** Like inSidroot(), without blocking the event loop (the server runs in this process's children). */
export function inSidrootAsync(root: string, argv: string[], options: SidrootOptions = {}): Promise<SidrootRun> {
  const { args, env } = invocation(root, argv, options);
  return new Promise((resolveRun) => {
    const child = spawn('bash', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 10 * 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolveRun({ status, stdout, stderr, output: `${stdout}${stderr}` });
    });
  });
}

/**
 * Starts a long-running command inside the root (in-sidroot.sh execs it, so the
 * child's pid is the command's own). Its output is collected by output().
 */
export function spawnInSidroot(
  root: string,
  argv: string[],
  options: SidrootOptions = {},
): { process: ChildProcess; output(): string; stop(): Promise<void> } {
  const { args, env } = invocation(root, argv, options);
  const child = spawn('bash', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<void>((resolveExit) => child.on('exit', () => resolveExit()));
  return {
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Startup flags for Debian's Bazel 7 to use --remote_cache_compression: it sets
 * java.library.path to /usr/share/bazel only, where zstd-jni's native library is
 * not (Debian installs it in /usr/lib/x86_64-linux-gnu), and then fails with
 * "UnsatisfiedLinkError: no zstd-jni in java.library.path".
 */
export const BAZEL7_ZSTD_STARTUP = ['--host_jvm_args=-Djava.library.path=/usr/share/bazel:/usr/lib/x86_64-linux-gnu'];

/**
 * Runs Bazel 7 inside the root with the same flags as the host's Bazel (test/support/bazel.ts),
 * its output root in `scratch`, which is bound into the root.
 */
export function bazel7(
  root: string,
  scratch: string,
  workspace: string,
  outputRoot: string,
  command: string,
  flags: string[],
  startupFlags: string[] = [],
): Promise<SidrootRun> {
  return inSidrootAsync(root, ['bazel', ...bazelArguments(outputRoot, command, flags, startupFlags)], {
    binds: [scratch],
    cwd: workspace,
    env: { HOME: scratch },
  });
}
