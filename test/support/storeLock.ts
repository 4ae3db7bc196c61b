/**
 * The check that a store on disk takes its directory's lock (src/util/directoryLock.ts)
 * where it opens it, shared by the tests of every such store.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirectoryInUseError } from '../../src/util/directoryLock.js';

/**
 * Asserts that `open` (a store in `directory`) is refused, naming the holder,
 * while another live process holds the directory; that the store holds it while
 * open; and that closing lets the next process in.
 */
export async function assertStoreLocksItsDirectory(
  directory: string,
  open: () => Promise<{ close(): Promise<void> }>,
): Promise<void> {
  const lockFile = join(directory, 'lock');
  const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    mkdirSync(directory, { recursive: true });
    writeFileSync(lockFile, `${holder.pid}\n`);
    await assert.rejects(open(), (error: unknown) => {
      assert.ok(error instanceof DirectoryInUseError, String(error));
      assert.equal(error.ownerPid, holder.pid);
      return true;
    });
  } finally {
    holder.kill('SIGKILL');
  }
  rmSync(lockFile);
  const store = await open();
  assert.equal(readFileSync(lockFile, 'utf8'), `${process.pid}\n`, 'held while open');
  await store.close();
  assert.equal(existsSync(lockFile), false, 'released on close');
}
