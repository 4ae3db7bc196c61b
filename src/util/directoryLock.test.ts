import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DirectoryInUseError, lockDirectory } from './directoryLock.js';

describe('lockDirectory', () => {
  const directory = mkdtempSync(join(tmpdir(), 'granary-lock-'));
  const lockFile = join(directory, 'lock');
  after(() => rmSync(directory, { recursive: true, force: true }));

  it('takes a free directory with its pid, and its release frees it', async () => {
    const release = await lockDirectory(directory);
    assert.equal(readFileSync(lockFile, 'utf8'), `${process.pid}\n`);
    release();
    assert.equal(existsSync(lockFile), false);
  });

  it('refuses while a live process holds the lock, naming its pid, and takes it once that process ends', async () => {
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    const holderPid = holder.pid as number;
    writeFileSync(lockFile, `${holderPid}\n`);
    await assert.rejects(lockDirectory(directory), (error: unknown) => {
      assert.ok(error instanceof DirectoryInUseError);
      assert.equal(error.ownerPid, holderPid);
      assert.ok(error.message.startsWith(`${directory} is in use by another granary process (pid ${holderPid})`));
      return true;
    });
    assert.equal(readFileSync(lockFile, 'utf8'), `${holderPid}\n`, 'the holder keeps its lock');
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    holder.kill('SIGKILL');
    await exited;
    const release = await lockDirectory(directory);
    assert.equal(readFileSync(lockFile, 'utf8'), `${process.pid}\n`);
    release();
  });

  it('takes over at once the lock of a process that is gone', async () => {
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    writeFileSync(lockFile, `${gone.pid}\n`);
    const release = await lockDirectory(directory);
    assert.equal(readFileSync(lockFile, 'utf8'), `${process.pid}\n`);
    release();
  });

  it('removes a lock file that stays unreadable, and never removes a lock another process took over', async () => {
    writeFileSync(lockFile, 'not a pid');
    const release = await lockDirectory(directory);
    assert.equal(readFileSync(lockFile, 'utf8'), `${process.pid}\n`);
    writeFileSync(lockFile, '1\n'); // as if pid 1 had taken it over after ours was removed
    release();
    assert.equal(readFileSync(lockFile, 'utf8'), '1\n');
    rmSync(lockFile);
  });
});
