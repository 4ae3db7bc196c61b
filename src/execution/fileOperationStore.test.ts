/**
 * Tests of the file-saved operation store through the scheduler: a restart keeps
 * what was accepted, unreadable files are set aside, saves are atomic and never
 * happen after close.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { actionRequest, successResponse } from '../../test/support/schedulerContract.js';
import { quietly } from '../../test/support/waiting.js';
import { backgroundContext } from '../context/requestContext.js';
import { FileOperationStore } from './fileOperationStore.js';
import { openScheduler as open, type SchedulerSettings } from './openScheduler.js';
import type { OperationScheduler } from './operationScheduler.js';

const ctx = backgroundContext();

const temporaryDirectories: string[] = [];
async function temporaryDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'granary-scheduler-'));
  temporaryDirectories.push(directory);
  return directory;
}
after(async () => {
  for (const directory of temporaryDirectories) await rm(directory, { recursive: true, force: true });
});

const opened: OperationScheduler[] = [];
async function openScheduler(settings: SchedulerSettings = {}): Promise<OperationScheduler> {
  const scheduler = await open(settings);
  opened.push(scheduler);
  return scheduler;
}
afterEach(async () => {
  for (const scheduler of opened.splice(0)) await scheduler.close().catch(() => {});
});

/** The file store under a scheduler opened with a state file. */
function storeOf(scheduler: OperationScheduler): FileOperationStore {
  const store = (scheduler as unknown as { store: unknown }).store;
  assert.ok(store instanceof FileOperationStore);
  return store;
}

describe('FileOperationStore under the scheduler', () => {
  it('survives a restart: results kept, running work requeued, queued work still queued and joinable', async () => {
    const stateFile = join(await temporaryDirectory(), 'state', 'operations.json');
    const first = await openScheduler({ stateFile });
    await first.heartbeat(ctx, 'w', []);
    const running = await first.submit(ctx, actionRequest('running'));
    const done = await first.submit(ctx, actionRequest('done'));
    const queued1 = await first.submit(ctx, actionRequest('queued1'));
    const queued2 = await first.submit(ctx, actionRequest('queued2'));
    const uncached = await first.submit(ctx, actionRequest('uncached', { doNotCache: true }));
    assert.deepEqual(
      (await first.take(ctx, 'w', 2)).map((a) => a.operationName),
      [running.name, done.name],
    );
    await first.complete(ctx, 'w', done.name, successResponse(42));
    await first.close();

    const second = await openScheduler({ stateFile });
    assert.equal((await second.list(ctx)).operations.length, 5);
    const reloadedDone = await second.get(ctx, done.name);
    assert.equal(reloadedDone?.stage, 'COMPLETED');
    assert.equal(reloadedDone?.response?.result?.exitCode, 42);
    assert.deepEqual(reloadedDone?.response?.result?.stdoutDigest, successResponse(42).result?.stdoutDigest);
    const reloadedRunning = await second.get(ctx, running.name);
    assert.equal(reloadedRunning?.stage, 'QUEUED', 'work that was running goes back to the queue');
    assert.equal(reloadedRunning?.workerId, undefined);
    assert.equal(reloadedRunning?.attempts, 1);
    for (const op of [queued1, queued2, uncached]) assert.equal((await second.get(ctx, op.name))?.stage, 'QUEUED');

    assert.equal(
      (await second.submit(ctx, actionRequest('running'))).name,
      running.name,
      'joins a reloaded requeued action',
    );
    assert.equal(
      (await second.submit(ctx, actionRequest('queued1'))).name,
      queued1.name,
      'joins a reloaded queued action',
    );
    assert.notEqual((await second.submit(ctx, actionRequest('done'))).name, done.name, 'a completed one is not joined');
    assert.notEqual((await second.submit(ctx, actionRequest('uncached', { doNotCache: true }))).name, uncached.name);

    const stages: string[] = [];
    await second.watch(ctx, queued2.name, (r) => stages.push(r.stage));
    await second.heartbeat(ctx, 'w2', []);
    const taken = (await second.take(ctx, 'w2', 10)).map((a) => a.operationName);
    assert.ok(taken.includes(queued2.name) && taken.includes(running.name));
    assert.ok(taken.indexOf(queued1.name) < taken.indexOf(queued2.name), 'the queue keeps its order');
    assert.deepEqual(stages, ['QUEUED', 'EXECUTING']);
  });

  it('starts empty from a truncated state file and keeps the unreadable file aside', async () => {
    const directory = await temporaryDirectory();
    const stateFile = join(directory, 'operations.json');
    const first = await openScheduler({ stateFile });
    await first.submit(ctx, actionRequest(1));
    await first.close();
    const text = await readFile(stateFile, 'utf8');
    await writeFile(stateFile, text.slice(0, Math.floor(text.length / 2)));

    const second = await quietly(() => openScheduler({ stateFile }));
    assert.deepEqual((await second.list(ctx)).operations, []);
    assert.equal(
      await readFile(join(directory, 'operations.json.unreadable'), 'utf8'),
      text.slice(0, Math.floor(text.length / 2)),
    );
    const op = await second.submit(ctx, actionRequest(2));
    await second.close();
    const third = await openScheduler({ stateFile });
    assert.deepEqual(
      (await third.list(ctx)).operations.map((o) => o.name),
      [op.name],
      'the next save replaces the unreadable file',
    );
  });

  for (const [what, content] of [
    ['garbage', 'not json at all \u0000'],
    ['JSON null', 'null'],
    ['a list where an object is expected', '[1, 2, 3]'],
    ['operations that are not a list', '{"version":1,"operations":{"a":1}}'],
    ['an operation without a request', '{"version":1,"operations":[{"name":"operations/x","stage":"QUEUED"}]}'],
    [
      'an undecodable response',
      '{"version":1,"operations":[{"name":"operations/x","stage":"COMPLETED","request":{"actionDigest":{"hash":"ab","sizeBytes":1}},"response":"/////w=="}]}',
    ],
  ]) {
    it(`starts empty from a state file holding ${what}`, async () => {
      const stateFile = join(await temporaryDirectory(), 'operations.json');
      await writeFile(stateFile, content as string);
      const scheduler = await quietly(() => openScheduler({ stateFile }));
      assert.deepEqual((await scheduler.list(ctx)).operations, []);
      const op = await scheduler.submit(ctx, actionRequest(1));
      assert.equal(op.stage, 'QUEUED');
    });
  }

  it('ignores a temporary file left by a save interrupted before its rename', async () => {
    const directory = await temporaryDirectory();
    const stateFile = join(directory, 'operations.json');
    const first = await openScheduler({ stateFile });
    const op = await first.submit(ctx, actionRequest(1));
    await first.close();
    await writeFile(`${stateFile}.0000.tmp`, '{"version":1,"operations":[{"na');
    const second = await openScheduler({ stateFile });
    assert.deepEqual(
      (await second.list(ctx)).operations.map((o) => o.name),
      [op.name],
    );
  });

  it('never lets a reader see a half-written state file and leaves no temporary files', async () => {
    const directory = await temporaryDirectory();
    const stateFile = join(directory, 'operations.json');
    const scheduler = await openScheduler({ stateFile });
    await scheduler.heartbeat(ctx, 'w', []);
    await scheduler.submit(ctx, actionRequest('seed'));
    await scheduler.close();
    const busy = await openScheduler({ stateFile });
    await busy.heartbeat(ctx, 'w', []);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 40; i++) {
        // Large-ish records so a non-atomic write would be visible part way.
        await busy.submit(ctx, actionRequest(i, { clientKey: 'x'.repeat(2_000) }));
        await storeOf(busy).save();
      }
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const text = await readFile(stateFile, 'utf8');
      assert.doesNotThrow(() => JSON.parse(text), 'the state file always parses');
      reads++;
    }
    await writer;
    await busy.close();
    assert.ok(reads > 0);
    assert.deepEqual(await readdir(directory), ['operations.json']);
    const reopened = await openScheduler({ stateFile });
    assert.equal((await reopened.list(ctx)).operations.length, 41);
  });

  it('keeps saving after a save failed', async () => {
    const directory = await temporaryDirectory();
    const blocker = join(directory, 'blocker');
    await writeFile(blocker, 'a file where the state directory should be');
    const stateFile = join(blocker, 'operations.json');
    const scheduler = await openScheduler({ stateFile });
    const op = await scheduler.submit(ctx, actionRequest(1));
    await assert.rejects(scheduler.close(), 'the state cannot be written while the directory is blocked');
    await rm(blocker);
    await scheduler.close();
    const reopened = await openScheduler({ stateFile });
    assert.deepEqual(
      (await reopened.list(ctx)).operations.map((o) => o.name),
      [op.name],
    );
  });

  it('writes nothing after close, even when a change was waiting to be saved', async () => {
    const directory = await temporaryDirectory();
    const stateFile = join(directory, 'state', 'operations.json');
    const scheduler = await openScheduler({ stateFile });
    const op = await scheduler.submit(ctx, actionRequest('a'));
    await scheduler.close();
    const saved = await readFile(stateFile, 'utf8');
    assert.ok(saved.includes(op.name), 'close saves the state');
    await rm(join(directory, 'state'), { recursive: true });
    // Past the save delay of the last change.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(await readdir(directory), [], 'a late save would recreate the file');
  });
});
