/**
 * Helpers of the meta-build end-to-end tests: the Debian sysroot made by
 * test/e2e/sysroot/make-sysroot.sh, scratch copies of examples/hello with its
 * placeholders filled in, running `granary` client commands as child processes,
 * and describing checked-out trees so that two of them can be compared.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { GRANARY_BIN, hasCommand, REPO_ROOT } from './harness.js';

export const SYSROOT_SCRIPT = join(REPO_ROOT, 'test', 'e2e', 'sysroot', 'make-sysroot.sh');

export interface Sysroot {
  path: string;
  sha256: string;
}

/**
 * Why the sysroot cannot be had here (it is built as root with debootstrap and
 * then cached), or false. In CI it is always required.
 */
export function sysrootUnavailable(): string | false {
  if (process.env.CI) return false;
  const cache = process.env.GRANARY_SYSROOT_CACHE ?? join(homedir(), '.cache', 'granary-sysroot');
  if (existsSync(join(cache, 'sysroot.tar'))) return false;
  if (process.getuid?.() === 0 && hasCommand('debootstrap')) return false;
  return 'the Debian sysroot is not cached and cannot be built here (needs root and debootstrap)';
}

/** Runs make-sysroot.sh (fast once cached; minutes the first time) and returns its tarball. */
export function makeSysroot(): Sysroot {
  const output = execFileSync('bash', [SYSROOT_SCRIPT], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 30 * 60_000,
  });
  const path = /^path=(.+)$/m.exec(output)?.[1];
  const sha256 = /^sha256=([0-9a-f]{64})$/m.exec(output)?.[1];
  if (!path || !sha256) throw new Error(`make-sysroot.sh printed no path= and sha256= lines:\n${output}`);
  return { path, sha256 };
}

/** A copy of examples/hello at `into`, with the sysroot's directory and sha256 filled in. */
export function helloProject(into: string, sysroot: Sysroot): string {
  cpSync(join(REPO_ROOT, 'examples', 'hello'), into, { recursive: true });
  const conf = join(into, 'project.conf');
  // The alias is `file:///SYSROOT_DIRECTORY/`: the directory without its leading slash.
  writeFileSync(
    conf,
    readFileSync(conf, 'utf8').replace('SYSROOT_DIRECTORY', dirname(sysroot.path).replace(/^\/+/, '')),
  );
  const base = join(into, 'elements', 'base.bst');
  writeFileSync(base, readFileSync(base, 'utf8').replace('SYSROOT_SHA256', sysroot.sha256));
  return into;
}

/** Writes files (path relative to `root` -> content), creating directories. */
export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
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

/**
 * The environment of client commands: caches and configuration in a scratch
 * directory, so nothing is shared with the user's own (no client.yaml, no
 * embedded farm data, no downloads).
 */
export function clientEnvironment(scratch: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: join(scratch, 'home'),
    XDG_CACHE_HOME: join(scratch, 'cache'),
    XDG_CONFIG_HOME: join(scratch, 'config'),
    LANG: 'C.UTF-8',
  };
}

/** `granary ARGS...` in `cwd`. */
export function granary(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<CommandRun> {
  return runCommand(process.execPath, [GRANARY_BIN, ...args], { cwd, env });
}

/** The progress line `[mm:ss] STATE    ELEMENT` of an element in a build's output. */
export function stateLine(state: string, element: string): RegExp {
  return new RegExp(`^\\[\\d{2}:\\d{2}\\] ${state}\\s+${element.replace(/\./g, '\\.')}$`, 'm');
}

/**
 * One line per path below `root`, sorted: `f PATH x|- SHA256` for files (with
 * their executable bit), `l PATH -> TARGET` for symlinks, `d PATH` for directories.
 */
export function describeTree(root: string): string[] {
  const lines: string[] = [];
  const walk = (relative: string) => {
    for (const name of readdirSync(join(root, relative)).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      const full = join(root, path);
      const stat = lstatSync(full);
      if (stat.isSymbolicLink()) lines.push(`l ${path} -> ${readlinkSync(full)}`);
      else if (stat.isDirectory()) {
        lines.push(`d ${path}`);
        walk(path);
      } else if (stat.isFile()) {
        const hash = createHash('sha256').update(readFileSync(full)).digest('hex');
        lines.push(`f ${path} ${stat.mode & 0o111 ? 'x' : '-'} ${hash}`);
      } else lines.push(`? ${path}`);
    }
  };
  walk('');
  return lines;
}

/** The lines only in `a` and only in `b`, at most `limit` of each. */
export function treeDifferences(a: string[], b: string[], limit = 20): { onlyA: string[]; onlyB: string[] } {
  const setA = new Set(a);
  const setB = new Set(b);
  return {
    onlyA: a.filter((line) => !setB.has(line)).slice(0, limit),
    onlyB: b.filter((line) => !setA.has(line)).slice(0, limit),
  };
}
