/**
 * Stopping a real `granary worker` (bubblewrap sandbox) with SIGTERM, against a
 * real `granary serve` whose worker timeout is long (60 s), so that an action
 * queued again at once can be told from one queued again because its worker went
 * silent. An idle worker ends at once; a busy one stops taking leases, lets its
 * running action finish within --drain-timeout and reports it, or, past that,
 * stops it and hands it back so another worker runs it; a second signal ends a
 * draining worker at once.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { type Connection, unary } from '../../src/client/connection.js';
import { executeRemotely } from '../../src/client/execute.js';
import { GrpcBlobStore } from '../../src/client/grpcBlobStore.js';
import type { Digest } from '../../src/digest/digest.js';
import {
  ExecuteOperationMetadata,
  ExecutionStage_Value,
} from '../../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { ListOperationsResponse, Operation } from '../../src/gen/google/longrunning/operations.js';
import { requireCommand } from '../support/commands.js';
import { startFarm, type TestFarm, useFarm } from '../support/farm.js';
import type { GranaryProcess } from '../support/granaryProcess.js';
import { dir, processWithArgumentExists, uploadAction, uploadTree } from '../support/worker.js';

/** Polls `condition` every 50 ms for up to `timeoutMs`; returns whether it became true. */
async function eventually(condition: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Resolves with the exit code (or signal) once the process has exited. */
function exited(worker: GranaryProcess): Promise<number | string> {
  const child = worker.process;
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve(child.exitCode ?? child.signalCode ?? '');
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? '')));
}

describe('a worker stopped with SIGTERM', { skip: requireCommand('bwrap'), timeout: 5 * 60_000 }, () => {
  const farm = useFarm({ name: 'worker-shutdown', embeddedWorkers: 0, serveFlags: ['--worker-timeout', '60s'] });
  let connection: Connection;
  let cas: GrpcBlobStore;
  let emptyRoot: Digest;
  let markers = 0;

  /** A sandboxed worker of `target` (the shared farm by default), with the default drain timeout unless given one. */
  const startWorker = (name: string, drainTimeout?: string, target: TestFarm = farm) =>
    target.startWorker({
      name,
      flags: ['--sandbox', 'bubblewrap', ...(drainTimeout ? ['--drain-timeout', drainTimeout] : [])],
    });

  /** An action that sleeps `seconds` under a unique marker argument, then succeeds. */
  const sleepingAction = async (seconds: number) => {
    const marker = `granary-drain-${process.pid}-${++markers}`;
    const action = await uploadAction(cas, {
      arguments: ['/bin/sh', '-c', `sleep ${seconds}; echo done`, marker],
      inputRoot: emptyRoot,
    });
    return { action, marker };
  };

  const operations = async (): Promise<Operation[]> =>
    (
      await unary<ListOperationsResponse>((done) =>
        connection.operations.listOperations(
          { name: '', filter: '', pageSize: 0, pageToken: '', returnPartialSuccess: false },
          done,
        ),
      )
    ).operations;

  const stageOf = (operation: Operation | undefined) =>
    operation?.metadata ? ExecuteOperationMetadata.decode(operation.metadata.value).stage : undefined;

  before(async () => {
    connection = farm.connect();
    cas = new GrpcBlobStore(connection);
    emptyRoot = await uploadTree(cas, { tmp: dir() });
  });

  test('an idle worker ends at once, without waiting for its drain timeout', async () => {
    const worker = await startWorker('idle');
    const startMs = Date.now();
    worker.process.kill('SIGTERM');
    assert.equal(await exited(worker), 0, worker.output());
    const elapsedMs = Date.now() - startMs;
    console.log(`idle worker exited ${elapsedMs} ms after SIGTERM`);
    assert.ok(elapsedMs < 10_000, `an idle worker must not wait for its 20 s drain timeout (took ${elapsedMs} ms)`);
  });

  test('an idle worker whose farm is gone ends at once, without sitting out its reconnect backoff', async () => {
    const lostFarm = farm.attach(await startFarm({ name: 'lost-farm', embeddedWorkers: 0 }));
    const worker = await startWorker('orphan', undefined, lostFarm);
    lostFarm.server.process.kill('SIGKILL');
    await lostFarm.stopServer();
    // Reconnect attempts back off 0.5, 1, 2, 4, 8 s (with jitter), up to 15 s; signal once a wait of 8 s or more
    // began, so the stop is measured against the wait it must cut short, not against a fixed bound.
    const announcedWaits = () =>
      [...worker.output().matchAll(/cannot reach server at \S+: .*; retrying in ([\d.]+) s$/gm)].map((line) =>
        Number(line[1]),
      );
    assert.ok(await eventually(() => announcedWaits().some((wait) => wait >= 8), 90_000), worker.output());
    const waitMs = Math.max(...announcedWaits()) * 1000;
    const startMs = Date.now();
    worker.process.kill('SIGTERM');
    assert.equal(await exited(worker), 0, worker.output());
    const elapsedMs = Date.now() - startMs;
    console.log(`worker without a farm exited ${elapsedMs} ms after SIGTERM, during a ${waitMs} ms wait`);
    assert.ok(elapsedMs < waitMs, `the reconnect backoff must not delay the stop (took ${elapsedMs} ms)`);
  });

  test('a busy worker takes no new lease, finishes its running action and reports it, then ends', async () => {
    const worker = await startWorker('finisher', '60s');
    const running = await sleepingAction(3);
    const result = executeRemotely(connection, running.action);
    assert.ok(await eventually(() => processWithArgumentExists(running.marker), 30_000), 'the action should run');
    worker.process.kill('SIGTERM');
    // Queued after the signal: a draining worker must leave it to another worker.
    const later = await sleepingAction(0);
    const laterResult = executeRemotely(connection, later.action);
    const response = await result;
    assert.equal(response.status?.code ?? 0, 0, response.status?.message);
    assert.equal(response.result?.exitCode, 0);
    assert.equal(response.result?.executionMetadata?.worker, 'finisher');
    assert.equal(await exited(worker), 0, worker.output());
    assert.doesNotMatch(worker.output(), /handing back/);
    assert.equal((worker.output().match(/executing /g) ?? []).length, 1, worker.output());
    assert.equal(await processWithArgumentExists(later.marker), false, 'the draining worker must not start new work');
    const other = await startWorker('after-finisher', '60s');
    const laterResponse = await laterResult;
    assert.equal(laterResponse.result?.executionMetadata?.worker, 'after-finisher');
    other.process.kill('SIGTERM');
    assert.equal(await exited(other), 0, other.output());
  });

  test('past its drain timeout a worker stops its action and hands it back, queued again at once', async () => {
    const worker = await startWorker('hander', '1s');
    const { action, marker } = await sleepingAction(8);
    const result = executeRemotely(connection, action);
    assert.ok(await eventually(() => processWithArgumentExists(marker), 30_000), 'the action should run');
    worker.process.kill('SIGTERM');
    assert.equal(await exited(worker), 0, worker.output());
    assert.match(worker.output(), /handing back 1 unfinished action/);
    assert.equal(await processWithArgumentExists(marker), false, 'the handed-back command must be stopped');
    // Back in the queue now, not when the farm's 60 s worker timeout would have noticed.
    const pending = (await operations()).filter((o) => !o.done);
    assert.equal(pending.length, 1);
    assert.equal(stageOf(pending[0]), ExecutionStage_Value.QUEUED);
    const other = await startWorker('taker', '60s');
    const response = await result;
    assert.equal(response.status?.code ?? 0, 0, response.status?.message);
    assert.equal(response.result?.exitCode, 0);
    assert.equal(response.result?.executionMetadata?.worker, 'taker');
    other.process.kill('SIGTERM');
    assert.equal(await exited(other), 0, other.output());
  });

  test('a second SIGTERM ends a draining worker at once, with its command', async () => {
    const worker = await startWorker('impatient', '60s');
    const { action, marker } = await sleepingAction(60);
    const result = executeRemotely(connection, action).catch((error: unknown) => error);
    assert.ok(await eventually(() => processWithArgumentExists(marker), 30_000), 'the action should run');
    worker.process.kill('SIGTERM');
    assert.ok(await eventually(() => /stopping;/.test(worker.output()), 10_000), worker.output());
    worker.process.kill('SIGTERM');
    assert.equal(await exited(worker), 143, worker.output());
    assert.ok(await eventually(async () => !(await processWithArgumentExists(marker)), 10_000), 'no command left');
    // The farm finds out through the worker timeout; end the operation rather than wait for it.
    const pending = (await operations()).find((o) => !o.done);
    if (pending) await unary((done) => connection.operations.cancelOperation({ name: pending.name }, done));
    await result;
  });
});
