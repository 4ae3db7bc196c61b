/**
 * Tests of the scheduler's snapshot-plus-journal state files, through the file
 * store: a change reaches disk without waiting for close or a timer and without
 * rewriting the snapshot, a crash (the store never closed) loses nothing that was
 * written, torn and stale journals are handled, and the journal is compacted.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { actionRequest, successResponse } from '../../test/support/schedulerContract.js';
import { quietly, until } from '../../test/support/waiting.js';
import { backgroundContext } from '../context/requestContext.js';
import { FileOperationStore } from './fileOperationStore.js';
import { openScheduler as open } from './openScheduler.js';
import type { OperationScheduler } from './operationScheduler.js';

const ctx = backgroundContext();

const temporaryDirectories: string[] = [];
async function stateFileIn(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'granary-journal-'));
  temporaryDirectories.push(directory);
  return join(directory, 'operations.json');
}
after(async () => {
  for (const directory of temporaryDirectories) await rm(directory, { recursive: true, force: true });
});

const opened: OperationScheduler[] = [];
async function openScheduler(stateFile: string): Promise<OperationScheduler> {
  const scheduler = await open({ stateFile });
  opened.push(scheduler);
  return scheduler;
}
afterEach(async () => {
  for (const scheduler of opened.splice(0)) await scheduler.close().catch(() => {});
});

function storeOf(scheduler: OperationScheduler): FileOperationStore {
  const store = (scheduler as unknown as { store: unknown }).store;
  assert.ok(store instanceof FileOperationStore);
  return store;
}

/** What a server restarted after a crash sees: a second store opened on the files the first left. */
async function namesAfterCrash(stateFile: string): Promise<string[]> {
  const reopened = await openScheduler(stateFile);
  return (await reopened.list(ctx)).operations.map((o) => o.name).sort();
}

describe('Scheduler state journal', () => {
  it('writes a change by itself, soon, without close or save, and a crash after that loses nothing', async () => {
    const stateFile = await stateFileIn();
    const scheduler = await openScheduler(stateFile);
    const op = await scheduler.submit(ctx, actionRequest('soon'));
    // The first write after opening is a snapshot; later ones go to the journal.
    const written = async () =>
      (await readFile(stateFile, 'utf8').catch(() => '')).includes(op.name) ||
      (await readFile(`${stateFile}.journal`, 'utf8').catch(() => '')).includes(op.name);
    await until(written, 5000);
    assert.deepEqual(await namesAfterCrash(stateFile), [op.name]);
  });

  it('appends a later change to the journal and leaves the snapshot as it was', async () => {
    const stateFile = await stateFileIn();
    const scheduler = await openScheduler(stateFile);
    await scheduler.heartbeat(ctx, 'w', []);
    const first = await scheduler.submit(ctx, actionRequest('first'));
    await storeOf(scheduler).save();
    const snapshot = await readFile(stateFile, 'utf8');
    const snapshotTime = (await stat(stateFile)).mtimeMs;

    const second = await scheduler.submit(ctx, actionRequest('second'));
    await scheduler.take(ctx, 'w', 1);
    await scheduler.complete(ctx, 'w', first.name, successResponse(7));
    await storeOf(scheduler).save();

    assert.equal(await readFile(stateFile, 'utf8'), snapshot, 'the snapshot is not rewritten for a change');
    assert.equal((await stat(stateFile)).mtimeMs, snapshotTime);
    const journal = await readFile(`${stateFile}.journal`, 'utf8');
    assert.ok(journal.includes(second.name) && journal.includes(first.name), 'the changes are in the journal');

    const reopened = await openScheduler(stateFile);
    const done = await reopened.get(ctx, first.name);
    assert.equal(done?.stage, 'COMPLETED');
    assert.equal(done?.response?.result?.exitCode, 7);
    assert.equal((await reopened.get(ctx, second.name))?.stage, 'QUEUED');
  });

  it('ignores a torn last line (a crash in the middle of an append) and keeps the rest', async () => {
    const stateFile = await stateFileIn();
    const scheduler = await openScheduler(stateFile);
    const first = await scheduler.submit(ctx, actionRequest(1));
    await storeOf(scheduler).save();
    const second = await scheduler.submit(ctx, actionRequest(2));
    await storeOf(scheduler).save();
    await appendFile(`${stateFile}.journal`, '{"put":{"name":"operations/torn","stage":"QUE');
    assert.deepEqual(await namesAfterCrash(stateFile), [first.name, second.name].sort());
  });

  it('keeps the changes before an unreadable journal line, ignores the rest and sets the journal aside', async () => {
    const stateFile = await stateFileIn();
    const scheduler = await openScheduler(stateFile);
    const first = await scheduler.submit(ctx, actionRequest(1));
    await storeOf(scheduler).save();
    const second = await scheduler.submit(ctx, actionRequest(2));
    await storeOf(scheduler).save();
    await appendFile(`${stateFile}.journal`, 'garbage\n');
    const third = await scheduler.submit(ctx, actionRequest(3));
    await storeOf(scheduler).save();
    assert.ok((await readFile(`${stateFile}.journal`, 'utf8')).includes(third.name));

    const names = await quietly(() => namesAfterCrash(stateFile));
    assert.deepEqual(names, [first.name, second.name].sort());
    assert.ok((await readdir(join(stateFile, '..'))).includes('operations.json.journal.unreadable'));
  });

  it('ignores a journal left from before the last snapshot (a crash while compacting)', async () => {
    const stateFile = await stateFileIn();
    const scheduler = await openScheduler(stateFile);
    const kept = await scheduler.submit(ctx, actionRequest('kept'));
    await storeOf(scheduler).save();
    const snapshot = JSON.parse(await readFile(stateFile, 'utf8')) as { generation: number };
    const stale = JSON.stringify({
      put: { ...JSON.parse(await readFile(stateFile, 'utf8')).operations[0], name: 'operations/stale' },
    });
    await writeFile(`${stateFile}.journal`, `${JSON.stringify({ generation: snapshot.generation - 1 })}\n${stale}\n`);
    assert.deepEqual(await namesAfterCrash(stateFile), [kept.name]);
  });

  it('compacts the journal into a new snapshot once it outgrows it, and loses nothing doing so', async () => {
    const stateFile = await stateFileIn();
    const scheduler = await openScheduler(stateFile);
    await storeOf(scheduler).save();
    const names: string[] = [];
    let largestJournal = 0;
    let compacted = false;
    // Records of about 2 KB: a few hundred outgrow the journal's 1 MiB floor.
    for (let batch = 0; batch < 8 && !compacted; batch++) {
      for (let i = 0; i < 100; i++) {
        names.push((await scheduler.submit(ctx, actionRequest(`${batch}-${i}`, { clientKey: 'x'.repeat(2000) }))).name);
      }
      await storeOf(scheduler).save();
      const journalBytes = (await stat(`${stateFile}.journal`)).size;
      compacted = journalBytes < largestJournal;
      largestJournal = Math.max(largestJournal, journalBytes);
    }
    assert.ok(compacted, 'the journal was compacted');
    assert.ok(largestJournal > 1024 * 1024, 'not before it held more than 1 MiB');
    assert.deepEqual(await namesAfterCrash(stateFile), names.sort());
  });

  it('leaves the whole state in the snapshot and no journal after close', async () => {
    const stateFile = await stateFileIn();
    const scheduler = await openScheduler(stateFile);
    const first = await scheduler.submit(ctx, actionRequest(1));
    await storeOf(scheduler).save();
    const second = await scheduler.submit(ctx, actionRequest(2));
    await scheduler.close();
    assert.deepEqual(await readdir(join(stateFile, '..')), ['operations.json']);
    const saved = JSON.parse(await readFile(stateFile, 'utf8')) as { operations: Array<{ name: string }> };
    assert.deepEqual(saved.operations.map((o) => o.name).sort(), [first.name, second.name].sort());
  });
});
