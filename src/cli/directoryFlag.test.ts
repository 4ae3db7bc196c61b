import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DirectoryInUseError } from '../util/directoryLock.js';
import { UsageError } from './args.js';
import { ensureFlagDirectory, inTermsOfDirectoryFlag } from './directoryFlag.js';

describe('a directory named by a flag', () => {
  let scratch: string;
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'granary-directory-flag-'));
  });
  after(() => rm(scratch, { recursive: true, force: true }));

  it('is created with its parents when missing, and left alone when there', async () => {
    const path = join(scratch, 'a', 'b');
    await ensureFlagDirectory(path, 'data');
    assert.ok((await stat(path)).isDirectory());
    await ensureFlagDirectory(path, 'data');
  });

  it('is refused plainly when it is a file, or below one', async () => {
    const file = join(scratch, 'file');
    await writeFile(file, '');
    await assert.rejects(ensureFlagDirectory(file, 'data'), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.equal(error.message, `--data ${file} is a file, not a directory`);
      return true;
    });
    await assert.rejects(
      ensureFlagDirectory(join(file, 'below'), 'work-dir'),
      new UsageError(`--work-dir ${join(file, 'below')}: a parent of it is a file, not a directory`),
    );
  });

  it('names the flag and the holder when another process uses a store below it, and leaves other errors alone', () => {
    const data = join(scratch, 'data');
    const inUse = new DirectoryInUseError(join(data, 'cas'), 4242);
    assert.equal(
      (inTermsOfDirectoryFlag(inUse, data, 'data') as Error).message,
      `--data ${data} is in use by another granary process (pid 4242); stop that one first, or give this one another --data`,
    );
    const elsewhere = new DirectoryInUseError(join(scratch, 'data-other', 'cas'), 4242);
    assert.equal(inTermsOfDirectoryFlag(elsewhere, data, 'data'), elsewhere);
    const other = new Error('disk full');
    assert.equal(inTermsOfDirectoryFlag(other, data, 'data'), other);
  });
});
