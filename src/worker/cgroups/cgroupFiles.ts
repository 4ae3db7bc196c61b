/**
 * Reading and writing cgroup interface files, and the life cycle of the
 * directories both cgroup versions share: group names carry the worker's pid, so
 * that workers sharing a parent group never touch each other's groups and a
 * worker's start-up can remove what a dead one left behind.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isProcessAlive } from '../../util/processLiveness.js';

/** A file's text, or undefined when it does not exist (a controller's file absent on this kernel). */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Like readOptional, synchronously: for one small in-kernel file on an action's path. */
export function readOptionalSync(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** One write(2) of `value`, as the cgroup file system expects (a value per write). */
export async function writeValue(path: string, value: string | number): Promise<void> {
  await writeFile(path, String(value));
}

/** Like writeValue, for files some kernels lack (memory.swap.max without swap accounting). */
export async function writeIfPresent(path: string, value: string | number): Promise<void> {
  try {
    await writeValue(path, value);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** The numbers of a flat keyed file ("oom_kill 1\nusage_usec 20\n"). */
export function keyedNumbers(text: string | undefined): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && /^\d+$/.test(value)) values.set(key, Number(value));
  }
  return values;
}

/** A number file's value ("max" and absent files give undefined). */
export async function readNumber(path: string): Promise<number | undefined> {
  const text = (await readOptional(path))?.trim();
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
}

/** The pids listed in a cgroup.procs file. */
export async function processesIn(procsFile: string): Promise<number[]> {
  const text = (await readOptional(procsFile)) ?? '';
  return text
    .split('\n')
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
}

/** The directory name of this worker's group for an action. */
export function groupName(name: string, pid = process.pid): string {
  return `${pid}.${name}`;
}

/**
 * Makes `parent` (where this worker's action groups go) and removes the groups in
 * it left by workers no longer running. Another live worker's groups stay.
 */
export async function prepareParent(parent: string, removeDirectory: (path: string) => Promise<void>): Promise<void> {
  await mkdir(parent, { recursive: true });
  for (const entry of await readdir(parent, { withFileTypes: true })) {
    const owner = /^(\d+)\./.exec(entry.name);
    if (!entry.isDirectory() || !owner || isProcessAlive(Number(owner[1]))) continue;
    await removeDirectory(join(parent, entry.name)).catch(() => undefined);
  }
}

/**
 * Removes a group directory once its processes are gone. A sandbox's processes
 * take a moment to die after its first process exits (the kernel tears down the
 * PID namespace), so this kills what is left, then retries for a while.
 */
export async function removeGroup(
  directory: string,
  killLeft: () => Promise<void>,
  removeDirectory: (path: string) => Promise<void> = rmdir,
): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      await removeDirectory(directory);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' && code !== 'ENOTEMPTY') throw error;
    }
    await killLeft().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, Math.min(5 + attempt * 5, 50)));
  }
  throw new Error(`cannot remove the cgroup ${directory}: processes are still in it`);
}

/** SIGKILLs every process listed in a cgroup.procs file. */
export async function killProcessesIn(procsFile: string): Promise<void> {
  for (const pid of await processesIn(procsFile)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
