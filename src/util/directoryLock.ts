/**
 * One process at a time in a store's directory: a `lock` file created
 * exclusively, holding the owner's pid. Two stores opened on one directory would
 * each keep their own index and evict the other's files, and a disk store empties
 * its tmp/ at start-up under the other's writes; so the stores take this lock
 * where they open their directory (diskBlobStore.ts, segmentBlobStore.ts), and a
 * second process is refused with the pid of the first. A lock whose owner is gone
 * (killed, crashed) is taken over.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isProcessAlive } from './processLiveness.js';

/** Looks at an unreadable lock file (its owner may be writing its pid) before it counts as garbage. */
const UNREADABLE_LOOKS = 10;
const UNREADABLE_POLL_MS = 20;

/** A directory another live process holds. */
export class DirectoryInUseError extends Error {
  constructor(
    readonly directory: string,
    readonly ownerPid: number,
  ) {
    super(`${directory} is in use by another granary process (pid ${ownerPid}): one process at a time may use it`);
    this.name = 'DirectoryInUseError';
  }
}

/**
 * Takes the lock of `directory` (which must exist) and returns its release;
 * throws DirectoryInUseError while a live process holds it.
 */
export async function lockDirectory(directory: string): Promise<() => void> {
  const path = join(directory, 'lock');
  let unreadable = 0;
  for (;;) {
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
      unreadable += 1;
      if (unreadable >= UNREADABLE_LOOKS) {
        rmSync(path, { force: true });
        unreadable = 0;
      } else {
        await sleep(UNREADABLE_POLL_MS);
      }
    } else if (owner === process.pid || !isProcessAlive(owner)) {
      // Stale: its owner is gone (or was an earlier process with our pid). Remove it only if it is still that one.
      if (ownerOf(path) === owner) rmSync(path, { force: true });
    } else {
      throw new DirectoryInUseError(directory, owner);
    }
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
