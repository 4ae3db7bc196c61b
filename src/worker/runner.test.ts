import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { processWithArgumentExists } from '../../test/support/worker.js';
import { type RunRequest, runCommand } from './runner.js';

describe('runCommand', () => {
  let directory: string;
  let counter = 0;
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'granary-runner-'));
  });
  after(() => rm(directory, { recursive: true, force: true }));

  const request = (script: string, extra: Partial<RunRequest> = {}): RunRequest => {
    counter++;
    return {
      file: '/bin/sh',
      args: ['-c', script],
      env: { PATH: '/usr/bin:/bin' },
      cwd: directory,
      stdoutPath: join(directory, `out-${counter}`),
      stderrPath: join(directory, `err-${counter}`),
      timeoutMs: 10_000,
      ...extra,
    };
  };

  test('captures stdout and stderr to files and returns the exit code', async () => {
    const r = request('echo out; echo err >&2; exit 3');
    const outcome = await runCommand(r);
    assert.equal(outcome.exitCode, 3);
    assert.equal(outcome.timedOut, false);
    assert.ok(outcome.endMs >= outcome.startMs);
    assert.equal(await readFile(r.stdoutPath, 'utf8'), 'out\n');
    assert.equal(await readFile(r.stderrPath, 'utf8'), 'err\n');
  });

  test('a command killed by a signal exits with 128 plus the signal number', async () => {
    assert.equal((await runCommand(request('kill -9 $$'))).exitCode, 137);
  });

  test('a timeout kills the whole process group and keeps the output so far', async () => {
    const marker = '31.0417';
    const r = request(`echo partial; sleep ${marker} & sleep ${marker}; echo never`, { timeoutMs: 300 });
    const started = Date.now();
    const outcome = await runCommand(r);
    assert.equal(outcome.timedOut, true);
    assert.ok(Date.now() - started < 5000);
    assert.equal(await readFile(r.stdoutPath, 'utf8'), 'partial\n');
    assert.equal(await processWithArgumentExists(marker), false);
  });

  test('a command ignoring SIGTERM is killed after the grace period', async () => {
    const outcome = await runCommand(request('trap "" TERM; sleep 30', { timeoutMs: 100, killGraceMs: 200 }));
    assert.equal(outcome.timedOut, true);
    assert.equal(outcome.exitCode, 137);
  });

  test('an AbortSignal cancels the command', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const marker = '32.0417';
    const outcome = await runCommand(request(`sleep ${marker}`, { signal: controller.signal }));
    assert.equal(outcome.cancelled, true);
    assert.equal(outcome.timedOut, false);
    assert.equal(await processWithArgumentExists(marker), false);
  });

  test('a program that cannot start is reported, not thrown', async () => {
    const outcome = await runCommand({ ...request(''), file: join(directory, 'no-such-program') });
    assert.equal(outcome.exitCode, -1);
    assert.match(String(outcome.spawnError), /ENOENT/);
  });
});
