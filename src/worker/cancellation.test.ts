/**
 * CancelOperation against a real worker: the farm tells the worker's bot session
 * that the lease is cancelled and the worker stops the running process.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { processWithArgumentExists } from '../../test/support/worker.js';
import { type Connection, connect, unary } from '../client/connection.js';
import { executeRemotely } from '../client/execute.js';
import { GrpcBlobStore } from '../client/grpcBlobStore.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestOf } from '../digest/digest.js';
import { Action, Command, Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { ListOperationsResponse } from '../gen/google/longrunning/operations.js';
import { type RunningFarm, startFarm } from '../server/farm.js';
import { putBuffer } from '../storage/blobStore.js';
import { Code, StatusError } from '../util/status.js';
import { type RunningWorker, startWorker } from './workerProcess.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

describe('a real worker under the farm: cancellation and platform properties', { timeout: 60_000 }, () => {
  let scratch: string;
  let farm: RunningFarm;
  let worker: RunningWorker;
  let connection: Connection;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'granary-cancel-'));
    farm = await startFarm({
      listen: '127.0.0.1:0',
      cas: { memory: { maxSizeBytes: 1 << 28 } },
      actionCache: { memory: { maxSizeBytes: 1 << 24 } },
    });
    worker = await startWorker({
      server: `grpc://${farm.address}`,
      instanceName: '',
      botId: 'cancel-test',
      slots: 1,
      platform: [{ name: 'OSFamily', value: 'linux' }],
      workDirectory: join(scratch, 'worker'),
      cacheSizeBytes: 1 << 28,
      sandbox: 'auto',
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

  test('stops the process on the worker and ends the operation with CANCELLED', async () => {
    const cas = new GrpcBlobStore(connection);
    const upload = async (data: Buffer): Promise<Digest> => {
      const digest = digestOf(data);
      await putBuffer(context, cas, digest, data);
      return digest;
    };
    const marker = `${20 + Math.random()}`.slice(0, 9);
    const root = await upload(Buffer.from(Directory.encode(Directory.fromPartial({})).finish()));
    const command = await upload(
      Buffer.from(Command.encode(Command.fromPartial({ arguments: ['sleep', marker] })).finish()),
    );
    const action = await upload(
      Buffer.from(Action.encode(Action.fromPartial({ commandDigest: command, inputRootDigest: root })).finish()),
    );
    let executing = false;
    const outcome = executeRemotely(connection, action, {
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
    const cas = new GrpcBlobStore(connection);
    const upload = async (data: Buffer): Promise<Digest> => {
      const digest = digestOf(data);
      await putBuffer(context, cas, digest, data);
      return digest;
    };
    const root = await upload(Buffer.from(Directory.encode(Directory.fromPartial({})).finish()));
    const command = await upload(Buffer.from(Command.encode(Command.fromPartial({ arguments: ['true'] })).finish()));
    const actionWith = (network: string) =>
      upload(
        Buffer.from(
          Action.encode(
            Action.fromPartial({
              commandDigest: command,
              inputRootDigest: root,
              platform: { properties: [{ name: 'network', value: network }] },
            }),
          ).finish(),
        ),
      );
    const offline = await executeRemotely(connection, await actionWith('off'));
    assert.equal(offline.result?.exitCode, 0, offline.status?.message);
    await assert.rejects(executeRemotely(connection, await actionWith('on')), { code: Code.FAILED_PRECONDITION });
  });
});
