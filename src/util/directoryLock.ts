/**
 * One process at a time in a directory: a `lock` file created exclusively,
 * holding the owner's pid. Two stores opened on one directory would each keep
 * their own index and evict the other's files, and a disk store empties its
 * tmp/ at start-up under the other's writes; so a second process waits for the
 * first (as a second Bazel command waits for the first) rather than share. A
 * lock whose owner is gone (killed, crashed) is taken over.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isProcessAlive } from './processLiveness.js';

/** Looks at an unreadable lock file before it counts as garbage. */
const UNREADABLE_LOOKS = 10;

export interface DirectoryLockOptions {
  /** Told once when another process holds the lock, with its pid. */
  readonly onWait?: (ownerPid: number) => void;
  /** How often to look again (ms). */
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
}

/** Takes the lock of `directory` (which must exist), waiting while a live process holds it; returns its release. */
export async function lockDirectory(directory: string, options: DirectoryLockOptions = {}): Promise<() => void> {
  const path = join(directory, 'lock');
  let told = false;
  let unreadable = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      return () => {
        // Only our own lock: never a lock another process took over after ours was removed.
        if (ownerOf(path) === process.pid) rmSync(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = ownerOf(path);
    if (owner === undefined) {
      // Being written by its new owner, or garbage: give it a few looks before removing it.
      unreadable += 1;
      if (unreadable >= UNREADABLE_LOOKS) {
        rmSync(path, { force: true });
        unreadable = 0;
        continue;
      }
    } else if (owner === process.pid || !isProcessAlive(owner)) {
      // Stale: its owner is gone (or was an earlier process with our pid). Remove it only if it is still that one.
      if (ownerOf(path) === owner) rmSync(path, { force: true });
      continue;
    } else {
      unreadable = 0;
      if (!told) {
        told = true;
        options.onWait?.(owner);
      }
    }
    await sleep(options.pollMs ?? 500, undefined, { signal: options.signal });
  }
}

function ownerOf(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
