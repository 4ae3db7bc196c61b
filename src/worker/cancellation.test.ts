/**
 * CancelOperation against a real worker: the farm tells the worker's bot session
 * that the lease is cancelled and the worker stops the running process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type FarmWithWorker, startFarmWithWorker } from '../../test/support/farmWithWorker.js';
import { processWithArgumentExists, uploadAction, uploadTree } from '../../test/support/worker.js';
import { type Connection, unary } from '../client/connection.js';
import { executeRemotely } from '../client/execute.js';
import type { Digest } from '../digest/digest.js';
import type { Platform_Property } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { ListOperationsResponse } from '../gen/google/longrunning/operations.js';
import { Code, StatusError } from '../util/status.js';

describe('a real worker under the farm: cancellation and platform properties', { timeout: 60_000 }, () => {
  let farm: FarmWithWorker;
  let connection: Connection;

  before(async () => {
    farm = await startFarmWithWorker('cancel-test', {
      worker: { platform: [{ name: 'OSFamily', value: 'linux' }], sandbox: 'auto' },
    });
    connection = farm.connection;
  });

  after(() => farm?.close());

  /** An action with an empty input root. */
  const action = async (args: string[], platform?: Platform_Property[]): Promise<Digest> =>
    uploadAction(farm.cas, { arguments: args, inputRoot: await uploadTree(farm.cas, {}), platform });

  test('stops the process on the worker and ends the operation with CANCELLED', async () => {
    const marker = `${20 + Math.random()}`.slice(0, 9);
    let executing = false;
    const outcome = executeRemotely(connection, await action(['sleep', marker]), {
      onStage: (stage) => {
        if (stage === 'EXECUTING') executing = true;
      },
    }).catch((error: unknown) => error);
    for (let i = 0; i < 400 && !(executing && (await processWithArgumentExists(marker))); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(await processWithArgumentExists(marker), 'the command should be running on the worker');
    const operations = await unary<ListOperationsResponse>((done) =>
      connection.operations.listOperations(
        { name: '', filter: '', pageSize: 0, pageToken: '', returnPartialSuccess: false },
        done,
      ),
    );
    const running = operations.operations.find((o) => !o.done);
    assert.ok(running, 'the operation is listed as running');
    await unary((done) => connection.operations.cancelOperation({ name: running.name }, done));
    const response = await outcome;
    if (response instanceof StatusError) assert.equal(response.code, Code.CANCELLED);
    else assert.equal((response as { status?: { code: number } }).status?.code, Code.CANCELLED);
    let gone = false;
    for (let i = 0; i < 200 && !gone; i++) {
      gone = !(await processWithArgumentExists(marker));
      if (!gone) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(gone, 'the worker must stop the cancelled process');
  });

  test('a bubblewrap worker takes actions asking for network=off, and network=on fails fast', async () => {
    const actionWith = (network: string) => action(['true'], [{ name: 'network', value: network }]);
    const offline = await executeRemotely(connection, await actionWith('off'));
    assert.equal(offline.result?.exitCode, 0, offline.status?.message);
    await assert.rejects(executeRemotely(connection, await actionWith('on')), { code: Code.FAILED_PRECONDITION });
  });
});
