/**
 * One source of truth for an action's timeout: the server decides it at Execute
 * (the Action's own, or the server's default) and the lease carries it to a real
 * worker, whose own default no longer applies.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Connection, connect } from '../client/connection.js';
import { executeRemotely } from '../client/execute.js';
import { GrpcBlobStore } from '../client/grpcBlobStore.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestOf } from '../digest/digest.js';
import { Action, Command, Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type RunningFarm, startFarm } from '../server/farm.js';
import { putBuffer } from '../storage/blobStore.js';
import { Code } from '../util/status.js';
import { type RunningWorker, startWorker } from './workerProcess.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

describe('the timeout of an action, decided by the server and enforced by a real worker', { timeout: 60_000 }, () => {
  let scratch: string;
  let farm: RunningFarm;
  let worker: RunningWorker;
  let connection: Connection;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'granary-lease-timeout-'));
    farm = await startFarm({
      listen: '127.0.0.1:0',
      cas: { memory: { maxSizeBytes: 1 << 28 } },
      actionCache: { memory: { maxSizeBytes: 1 << 24 } },
      execution: { defaultTimeoutMs: 1_000 },
    });
    worker = await startWorker({
      server: `grpc://${farm.address}`,
      instanceName: '',
      botId: 'timeout-test',
      slots: 2,
      platform: [],
      workDirectory: join(scratch, 'worker'),
      cacheSizeBytes: 1 << 28,
      sandbox: 'none',
      // Were the worker's own default used, these actions would run for a minute.
      defaultTimeoutMs: 60_000,
      log: () => {},
    });
    connection = connect(`grpc://${farm.address}`);
  });

  after(async () => {
    connection?.close();
    await worker?.stop();
    await farm?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  async function sleepAction(seconds: string, timeout?: { seconds: number; nanos: number }): Promise<Digest> {
    const cas = new GrpcBlobStore(connection);
    const upload = async (data: Buffer): Promise<Digest> => {
      const digest = digestOf(data);
      await putBuffer(context, cas, digest, data);
      return digest;
    };
    const root = await upload(Buffer.from(Directory.encode(Directory.fromPartial({})).finish()));
    const command = await upload(
      Buffer.from(Command.encode(Command.fromPartial({ arguments: ['sleep', seconds] })).finish()),
    );
    return upload(
      Buffer.from(
        Action.encode(Action.fromPartial({ commandDigest: command, inputRootDigest: root, timeout })).finish(),
      ),
    );
  }

  test('an action that sets no timeout gets the server’s default on the worker', async () => {
    const response = await executeRemotely(connection, await sleepAction('30.1'));
    assert.equal(response.status?.code, Code.DEADLINE_EXCEEDED, response.status?.message);
    assert.match(response.status?.message ?? '', /timeout of 1000 ms/);
  });

  test('an action’s own timeout is the one the worker enforces', async () => {
    const response = await executeRemotely(connection, await sleepAction('30.2', { seconds: 2, nanos: 0 }));
    assert.equal(response.status?.code, Code.DEADLINE_EXCEEDED, response.status?.message);
    assert.match(response.status?.message ?? '', /timeout of 2000 ms/);
  });

  test('an action that finishes in time succeeds', async () => {
    const response = await executeRemotely(connection, await sleepAction('0', { seconds: 30, nanos: 0 }));
    assert.equal(response.status?.code ?? Code.OK, Code.OK, response.status?.message);
    assert.equal(response.result?.exitCode, 0);
  });
});
