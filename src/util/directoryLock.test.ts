import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { lockDirectory } from './directoryLock.js';

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

  it('waits while a live process holds the lock, says so once, and takes it when that process ends', async () => {
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    const holderPid = holder.pid as number;
    writeFileSync(lockFile, `${holderPid}\n`);
    const waits: number[] = [];
    let taken = false;
    const locking = lockDirectory(directory, { pollMs: 20, onWait: (pid) => waits.push(pid) }).then((release) => {
      taken = true;
      return release;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(taken, false, 'the lock is still held');
    assert.deepEqual(waits, [holderPid]);
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    holder.kill('SIGKILL');
    await exited;
    const release = await locking;
    assert.equal(readFileSync(lockFile, 'utf8'), `${process.pid}\n`);
    assert.deepEqual(waits, [holderPid], 'told once');
    release();
  });

  it('takes over at once the lock of a process that is gone', async () => {
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    writeFileSync(lockFile, `${gone.pid}\n`);
    const waits: number[] = [];
    const release = await lockDirectory(directory, { pollMs: 20, onWait: (pid) => waits.push(pid) });
    assert.deepEqual(waits, []);
    assert.equal(readFileSync(lockFile, 'utf8'), `${process.pid}\n`);
    release();
  });

  it('removes a lock file that stays unreadable, and never removes a lock another process took over', async () => {
    writeFileSync(lockFile, 'not a pid');
    const release = await lockDirectory(directory, { pollMs: 5 });
    assert.equal(readFileSync(lockFile, 'utf8'), `${process.pid}\n`);
    writeFileSync(lockFile, '1\n'); // as if pid 1 had taken it over after ours was removed
    release();
    assert.equal(readFileSync(lockFile, 'utf8'), '1\n');
    rmSync(lockFile);
  });

  it('stops waiting when its signal aborts', async () => {
    writeFileSync(lockFile, '1\n'); // pid 1 is always alive
    const controller = new AbortController();
    const locking = lockDirectory(directory, { pollMs: 20, signal: controller.signal });
    controller.abort();
    await assert.rejects(locking, { name: 'AbortError' });
    rmSync(lockFile);
  });
});
