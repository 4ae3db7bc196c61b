/**
 * Directories named by flags (`--data`, `--work-dir`): created when missing, refused
 * plainly when not directories or when another process is using them.
 */
import { mkdir } from 'node:fs/promises';
import { sep } from 'node:path';
import { DirectoryInUseError } from '../util/directoryLock.js';
import { UsageError } from './args.js';

/**
 * Creates `path` (the resolved value of `--NAME`) and its parents if missing. A file
 * where the directory or one of its parents should be is a usage error saying so,
 * not mkdir's EEXIST or ENOTDIR.
 */
export async function ensureFlagDirectory(path: string, name: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UsageError(`--${name} ${path} is a file, not a directory`);
    if (code === 'ENOTDIR') throw new UsageError(`--${name} ${path}: a parent of it is a file, not a directory`);
    throw error;
  }
}

/**
 * The error to show for `error` when the command's stores live under `path` (the
 * resolved value of `--NAME`): a store directory below it that another process
 * holds names the flag and that process; anything else is returned as it is.
 */
export function inTermsOfDirectoryFlag(error: unknown, path: string, name: string): unknown {
  if (!(error instanceof DirectoryInUseError)) return error;
  if (error.directory !== path && !error.directory.startsWith(`${path}${sep}`)) return error;
  return new Error(
    `--${name} ${path} is in use by another granary process (pid ${error.ownerPid}); ` +
      `stop that one first, or give this one another --${name}`,
  );
}
