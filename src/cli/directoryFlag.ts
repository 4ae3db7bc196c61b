/** Directories named by flags (`--data`, `--work-dir`): created when missing, refused plainly when not directories. */
import { mkdir } from 'node:fs/promises';
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
