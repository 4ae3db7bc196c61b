/**
 * Scratch space of end-to-end tests: a fresh directory per suite under the system's
 * temporary directory, files written into it, and removal that never fails a teardown.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A new empty directory named granary-PREFIX-XXXXXX in the temporary directory. */
export function scratchDirectory(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `granary-${prefix}-`));
}

/** Removes a file or tree if it is there; teardown code calls it whatever state the test left. */
export function removeQuietly(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

/** Writes files (path relative to `root` -> content), creating directories. */
export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
}
