/**
 * One source of truth for an action's timeout: the server decides it at Execute
 * (the Action's own, or the server's default) and the lease carries it to a real
 * worker, whose own default no longer applies.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type FarmWithWorker, startFarmWithWorker } from '../../test/support/farmWithWorker.js';
import { uploadAction, uploadTree } from '../../test/support/worker.js';
import { executeRemotely } from '../client/execute.js';
import type { Digest } from '../digest/digest.js';
import { Code } from '../util/status.js';

describe('the timeout of an action, decided by the server and enforced by a real worker', { timeout: 60_000 }, () => {
  let farm: FarmWithWorker;

  before(async () => {
    farm = await startFarmWithWorker('timeout-test', {
      farm: { execution: { defaultTimeoutMs: 1_000 } },
      // Were the worker's own default used, these actions would run for a minute.
      worker: { slots: 2, defaultTimeoutMs: 60_000 },
    });
  });

  after(() => farm?.close());

  async function sleepAction(seconds: string, timeoutMs?: number): Promise<Digest> {
    const inputRoot = await uploadTree(farm.cas, {});
    return uploadAction(farm.cas, { arguments: ['sleep', seconds], inputRoot, timeoutMs });
  }

  test('an action that sets no timeout gets the server’s default on the worker', async () => {
    const response = await executeRemotely(farm.connection, await sleepAction('30.1'));
    assert.equal(response.status?.code, Code.DEADLINE_EXCEEDED, response.status?.message);
    assert.match(response.status?.message ?? '', /timeout of 1000 ms/);
  });

  test('an action’s own timeout is the one the worker enforces', async () => {
    const response = await executeRemotely(farm.connection, await sleepAction('30.2', 2_000));
    assert.equal(response.status?.code, Code.DEADLINE_EXCEEDED, response.status?.message);
    assert.match(response.status?.message ?? '', /timeout of 2000 ms/);
  });

  test('an action that finishes in time succeeds', async () => {
    const response = await executeRemotely(farm.connection, await sleepAction('0', 30_000));
    assert.equal(response.status?.code ?? Code.OK, Code.OK, response.status?.message);
    assert.equal(response.result?.exitCode, 0);
  });
});
