/**
 * Where `granary checkout` may write: a directory that does not exist yet or
 * is empty, as `bst artifact checkout` requires without --force. Checking
 * first means a checkout never half-overwrites an earlier one and then stops
 * at the first file or symlink already there.
 */
import { readdir } from 'node:fs/promises';

/** Resolves if `path` is missing or an empty directory; rejects with a message naming `shown` otherwise. */
export async function assertCheckoutDestination(path: string, shown: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new Error(`${shown} is not a directory`);
    throw error;
  }
  if (entries.length > 0) {
    throw new Error(`${shown} is not empty; check out into a new or empty directory (remove it first to replace it)`);
  }
}
