/**
 * Running other programs from end-to-end tests: whether one is installed (tests that need
 * it are skipped locally, never in CI), and running one to completion with its output.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';

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

/** Runs a command synchronously and returns its stdout; throws if it fails. */
export function run(command: string, args: string[], cwd: string): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8' });
}

export interface CommandRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout then stderr, for assertion messages. */
  output: string;
}

/** Runs a command to completion without blocking the event loop (the test process also reads server logs). */
export function runCommand(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<CommandRun> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 10 * 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolveRun({ status, stdout, stderr, output: `${stdout}${stderr}` });
    });
  });
}
