/**
 * Per-action limits through a real farm: `granary serve` with its embedded worker
 * (which finds this machine's cgroups, as root) and a test client's Execute. An
 * action over its memory-limit is killed by the kernel and its ActionResult says
 * so (exit code 137, a line on stderr); one within its limit runs; one asking for
 * more than the worker's --action-memory-max is refused with FAILED_PRECONDITION.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Connection } from '../../src/client/connection.js';
import { executeRemotely } from '../../src/client/execute.js';
import { GrpcBlobStore } from '../../src/client/grpcBlobStore.js';
import type { Platform_Property } from '../../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code } from '../../src/util/status.js';
import { detectActionCgroups } from '../../src/worker/cgroups/cgroupDetection.js';
import { bubblewrapAvailable } from '../../src/worker/sandbox.js';
import { useFarm } from '../support/farm.js';
import { blobText, uploadAction, uploadTree } from '../support/worker.js';

const detection = process.getuid?.() === 0 ? await detectActionCgroups() : { reasons: ['not root'] };
const skip = !detection.cgroups
  ? `no usable cgroups here: ${detection.reasons.join('; ')}`
  : !(await bubblewrapAvailable())
    ? 'bubblewrap cannot create namespaces here'
    : false;

describe('per-action limits through a real farm', { skip, timeout: 180_000 }, () => {
  const farm = useFarm({
    name: 'action-limits',
    embeddedWorkers: 1,
    serveFlags: ['--sandbox', 'bubblewrap', '--action-memory-max', '512MiB'],
  });
  let connection: Connection;
  let cas: GrpcBlobStore;

  before(() => {
    connection = farm.connect();
    cas = new GrpcBlobStore(connection);
  });

  const execute = async (script: string, platform: Platform_Property[]) => {
    const inputRoot = await uploadTree(cas, {});
    const action = await uploadAction(cas, { arguments: ['/bin/sh', '-c', script], inputRoot, platform });
    return executeRemotely(connection, action, { skipCacheLookup: true });
  };

  test('an action over its memory limit is reported killed in its ActionResult', async () => {
    const response = await execute('dd if=/dev/zero of=/dev/null bs=256M count=1 && echo survived', [
      { name: 'memory-limit', value: '64MiB' },
    ]);
    assert.equal(response.status?.code ?? 0, Code.OK, response.status?.message);
    assert.equal(response.result?.exitCode, 137);
    assert.equal(await blobText(cas, response.result?.stdoutDigest), '');
    assert.match(
      (await blobText(cas, response.result?.stderrDigest)) ?? '',
      /granary: the action was killed: it exceeded its memory limit of 64MiB\n$/,
    );
  });

  test('the same action within its limit succeeds', async () => {
    const response = await execute('dd if=/dev/zero of=/dev/null bs=32M count=1 2>/dev/null && echo survived', [
      { name: 'memory-limit', value: '128MiB' },
      { name: 'cpu-limit', value: '1' },
      { name: 'process-limit', value: '16' },
    ]);
    assert.equal(response.result?.exitCode, 0, await blobText(cas, response.result?.stderrDigest));
    assert.equal(await blobText(cas, response.result?.stdoutDigest), 'survived\n');
  });

  test('an action asking for more memory than the worker allows is refused with FAILED_PRECONDITION', async () => {
    const response = await execute('echo ran', [{ name: 'memory-limit', value: '1GiB' }]);
    assert.equal(response.status?.code, Code.FAILED_PRECONDITION);
    assert.match(response.status?.message ?? '', /memory-limit=1GiB is above this worker's maximum of 512MiB/);
  });
});
