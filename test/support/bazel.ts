/**
 * Running Bazel in end-to-end tests the same way everywhere: batch mode (no Bazel server
 * left behind), an output root per test, Debian's --sandbox_debug turned off, no colours or
 * progress bars; the flag sets that point Bazel at a farm; and reading its summary of spawns.
 */
import { spawn, spawnSync } from 'node:child_process';

export interface BazelRun {
  status: number | null;
  output: string;
}

/**
 * Bazel's argument list: startup flags (`--batch`, the output root, `startupFlags`), the
 * command, the flags every test run needs, then the test's own `flags`.
 */
export function bazelArguments(
  outputRoot: string,
  command: string,
  flags: readonly string[],
  startupFlags: readonly string[] = [],
): string[] {
  return [
    '--batch',
    `--output_user_root=${outputRoot}`,
    ...startupFlags,
    command,
    // Debian's /etc/bazel/bazelrc turns sandbox debugging on, which keeps every sandbox on disk.
    '--nosandbox_debug',
    '--color=no',
    '--curses=no',
    ...flags,
  ];
}

/** The environment of the host's Bazel: Debian's, which needs java on PATH and nothing else. */
const bazelEnvironment = (outputRoot: string) => ({ PATH: '/usr/bin:/bin', HOME: outputRoot });

/** Runs the host's Bazel 4.2.3 (Debian bazel-bootstrap) in `workspace`, blocking until it ends. */
export function bazel(workspace: string, outputRoot: string, command: string, flags: string[]): BazelRun {
  const result = spawnSync('bazel', bazelArguments(outputRoot, command, flags), {
    cwd: workspace,
    encoding: 'utf8',
    env: bazelEnvironment(outputRoot),
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Like bazel(), without blocking the event loop (for tests that act during a build, or serve it from this process). */
export function bazelAsync(workspace: string, outputRoot: string, command: string, flags: string[]): Promise<BazelRun> {
  return new Promise((resolveRun) => {
    const child = spawn('bazel', bazelArguments(outputRoot, command, flags), {
      cwd: workspace,
      env: bazelEnvironment(outputRoot),
    });
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

/** A farm as Bazel's remote cache. */
export function remoteCacheFlags(url: string, timeoutSeconds = 60): string[] {
  return [`--remote_cache=${url}`, `--remote_timeout=${timeoutSeconds}`];
}

/** A farm as Bazel's remote executor, with no local fallback. */
export function remoteExecutionFlags(url: string, timeoutSeconds = 120): string[] {
  return [`--remote_executor=${url}`, '--spawn_strategy=remote', `--remote_timeout=${timeoutSeconds}`];
}

/** A farm as Bazel's downloader of external repositories (Remote Asset API); Bazel 4 also wants a --remote_cache. */
export function remoteDownloaderFlags(url: string): string[] {
  return [`--experimental_remote_downloader=${url}`];
}

/** Platform properties (KEY=VALUE) of every action Bazel sends. */
export function execPropertyFlags(...properties: string[]): string[] {
  return properties.map((property) => `--remote_default_exec_properties=${property}`);
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

/**
 * The spawn kinds of a summary other than `allowed` and Bazel's own bookkeeping (total,
 * internal), with their counts: what ran where a test said nothing may run.
 */
export function spawnsOtherThan(summary: Record<string, number>, allowed: readonly string[]): [string, number][] {
  return Object.entries(summary).filter(([kind]) => !['total', 'internal', ...allowed].includes(kind));
}
