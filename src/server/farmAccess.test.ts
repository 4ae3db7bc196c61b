/**
 * Access control across every service of a farm, in process: callers of an
 * access file with different scopes and instance patterns, real grpc-js clients
 * sending their tokens, and the exact status each call gets.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { rejectsWithCode } from '../../test/support/status.js';
import { enforcedAccess } from '../auth/accessPolicy.js';
import { CallerAuthenticator } from '../auth/callerAuthenticator.js';
import { type Connection, connect, fromServiceError, unary } from '../client/connection.js';
import { digestOf } from '../digest/digest.js';
import {
  FetchBlobRequest,
  FetchClient,
  PushBlobRequest,
  PushClient,
} from '../gen/build/bazel/remote/asset/v1/remote_asset.js';
import {
  Action,
  type ActionResult,
  ActionResult as ActionResultMessage,
  type BatchUpdateBlobsResponse,
  Command,
  Directory,
  ExecuteRequest,
  type FindMissingBlobsResponse,
  type ServerCapabilities,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { BotSession, BotStatus, BotsClient } from '../gen/google/devtools/remoteworkers/v1test2/bots.js';
import type { Operation } from '../gen/google/longrunning/operations.js';
import { accessHooks } from '../grpc/accessHooks.js';
import { Code } from '../util/status.js';
import { type RunningFarm, startFarm } from './farm.js';

const TOKENS = {
  reader: 'reader-token-0123456789',
  uploader: 'uploader-token-0123456789',
  writer: 'writer-token-0123456789',
  teamExecutor: 'team-executor-token-0123456789',
  otherExecutor: 'other-executor-token-0123456789',
  bot: 'bot-token-0123456789',
};

const ACCESS_FILE = `
- name: reader
  token: ${TOKENS.reader}
  scopes: [read]
  instances: ["*"]
- name: uploader
  token: ${TOKENS.uploader}
  scopes: [read, cas-write]
  instances: ["*"]
- name: writer
  token: ${TOKENS.writer}
  scopes: [read, cas-write, ac-write, asset-write]
  instances: ["*"]
- name: team-executor
  token: ${TOKENS.teamExecutor}
  scopes: [read, cas-write, execute]
  instances: ["team/*"]
- name: other-executor
  token: ${TOKENS.otherExecutor}
  scopes: [read, execute]
  instances: ["other"]
- name: bot
  token: ${TOKENS.bot}
  scopes: [bots]
  instances: ["*"]
`;

const BLOB = Buffer.from('a blob for access tests\n');

describe('a farm with an access file', () => {
  let directory: string;
  let farm: RunningFarm;
  const connections: Connection[] = [];

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'granary-access-'));
    const accessFile = join(directory, 'tokens.yaml');
    writeFileSync(accessFile, ACCESS_FILE, { mode: 0o600 });
    const authenticator = await CallerAuthenticator.open({ accessFile, anonymous: 'none' });
    farm = await startFarm({
      listen: '127.0.0.1:0',
      hooks: accessHooks(enforcedAccess(authenticator)),
      cas: { memory: { maxSizeBytes: 1 << 26 } },
      actionCache: { memory: { maxSizeBytes: 1 << 24 } },
    });
  });
  after(async () => {
    for (const connection of connections) connection.close();
    await farm.close();
    rmSync(directory, { recursive: true, force: true });
  });

  const as = (token: string | undefined, instanceName = ''): Connection => {
    const connection = connect(`grpc://${farm.address}`, instanceName, token ? { token: () => token } : {});
    connections.push(connection);
    return connection;
  };

  const capabilities = (client: Connection) =>
    unary<ServerCapabilities>((done) =>
      client.capabilities.getCapabilities({ instanceName: client.instanceName }, done),
    );
  const findMissing = (client: Connection) =>
    unary<FindMissingBlobsResponse>((done) =>
      client.cas.findMissingBlobs(
        { instanceName: client.instanceName, blobDigests: [digestOf(BLOB)], digestFunction: 0 },
        done,
      ),
    );
  const upload = (client: Connection, blobs: Buffer[]) =>
    unary<BatchUpdateBlobsResponse>((done) =>
      client.cas.batchUpdateBlobs(
        {
          instanceName: client.instanceName,
          digestFunction: 0,
          requests: blobs.map((data) => ({ digest: digestOf(data), data, compressor: 0 })),
        },
        done,
      ),
    );
  const readBlob = async (client: Connection) => {
    const digest = digestOf(BLOB);
    const stream = client.byteStream.read({
      resourceName: `blobs/${digest.hash}/${digest.sizeBytes}`,
      readOffset: 0,
      readLimit: 0,
    });
    try {
      for await (const _ of stream) {
        // drain
      }
    } catch (error) {
      throw fromServiceError(error as ServiceError);
    }
  };
  const writeBlob = (client: Connection) =>
    new Promise<void>((resolve, reject) => {
      const digest = digestOf(BLOB);
      const stream = client.byteStream.write(new Metadata(), (error) =>
        error ? reject(fromServiceError(error)) : resolve(),
      );
      stream.write({
        resourceName: `uploads/8c6e7f3a-1b2c-4d5e-8f90-a1b2c3d4e5f6/blobs/${digest.hash}/${digest.sizeBytes}`,
        writeOffset: 0,
        finishWrite: true,
        data: BLOB,
      });
      stream.end();
    });
  const getResult = (client: Connection) =>
    unary<ActionResult>((done) =>
      client.actionCache.getActionResult(
        {
          instanceName: client.instanceName,
          actionDigest: digestOf(Buffer.from('no such action')),
          inlineStdout: false,
          inlineStderr: false,
          inlineOutputFiles: [],
          digestFunction: 0,
        },
        done,
      ),
    );
  const updateResult = (client: Connection) =>
    unary<ActionResult>((done) =>
      client.actionCache.updateActionResult(
        {
          instanceName: client.instanceName,
          actionDigest: digestOf(Buffer.from('an action of the writer')),
          actionResult: ActionResultMessage.fromPartial({ exitCode: 0, stdoutDigest: digestOf(BLOB) }),
          resultsCachePolicy: undefined,
          digestFunction: 0,
        },
        done,
      ),
    );
  /** Starts an Execute and resolves with the first operation message (or its refusal). */
  const execute = async (client: Connection): Promise<Operation> => {
    const command = Buffer.from(Command.encode(Command.fromPartial({ arguments: ['/bin/true'] })).finish());
    const input = Buffer.from(Directory.encode(Directory.fromPartial({})).finish());
    const action = Buffer.from(
      Action.encode(
        Action.fromPartial({ commandDigest: digestOf(command), inputRootDigest: digestOf(input) }),
      ).finish(),
    );
    await upload(as(TOKENS.writer, client.instanceName), [command, input, action]);
    return new Promise((resolve, reject) => {
      const stream = client.execution.execute(
        ExecuteRequest.fromPartial({
          instanceName: client.instanceName,
          actionDigest: digestOf(action),
          skipCacheLookup: true,
        }),
      );
      stream.once('data', (operation: Operation) => {
        resolve(operation);
        stream.cancel();
      });
      stream.once('error', (error: ServiceError) => reject(fromServiceError(error)));
    });
  };
  const getOperation = (client: Connection, name: string) =>
    unary<Operation>((done) => client.operations.getOperation({ name }, done));
  const createBotSession = (client: Connection) =>
    unary((done) =>
      client.channel.client(BotsClient).createBotSession(
        {
          parent: client.instanceName,
          botSession: BotSession.fromPartial({ botId: 'access-test-bot', status: BotStatus.OK }),
        },
        done,
      ),
    );
  const fetchBlob = (client: Connection) =>
    unary((done) =>
      client.channel
        .client(FetchClient)
        .fetchBlob(
          FetchBlobRequest.fromPartial({ instanceName: client.instanceName, uris: ['https://example.invalid/x'] }),
          done,
        ),
    );
  const pushBlob = (client: Connection) =>
    unary((done) =>
      client.channel.client(PushClient).pushBlob(
        PushBlobRequest.fromPartial({
          instanceName: client.instanceName,
          uris: ['urn:test:blob'],
          blobDigest: digestOf(BLOB),
        }),
        done,
      ),
    );

  it('refuses every service to a caller without credentials with UNAUTHENTICATED', async () => {
    const anonymous = as(undefined);
    const calls: [string, Promise<unknown>][] = [
      ['GetCapabilities', capabilities(anonymous)],
      ['FindMissingBlobs', findMissing(anonymous)],
      ['BatchUpdateBlobs', upload(anonymous, [BLOB])],
      ['ByteStream.Read', readBlob(anonymous)],
      ['ByteStream.Write', writeBlob(anonymous)],
      ['GetActionResult', getResult(anonymous)],
      ['UpdateActionResult', updateResult(anonymous)],
      ['GetOperation', getOperation(anonymous, 'operations/x')],
      ['CreateBotSession', createBotSession(anonymous)],
      ['FetchBlob', fetchBlob(anonymous)],
      ['PushBlob', pushBlob(anonymous)],
    ];
    for (const [name, call] of calls) {
      const error = await rejectsWithCode(call, Code.UNAUTHENTICATED, name);
      assert.match(error.message, /credentials are required/, name);
    }
    await rejectsWithCode(execute(anonymous), Code.UNAUTHENTICATED);
    await rejectsWithCode(findMissing(as('wrong-token-0123456789')), Code.UNAUTHENTICATED);
  });

  it('lets a read-only token read, and refuses it every write with PERMISSION_DENIED', async () => {
    const reader = as(TOKENS.reader);
    await upload(as(TOKENS.writer), [BLOB]);
    assert.deepEqual((await findMissing(reader)).missingBlobDigests, []);
    await readBlob(reader);
    await rejectsWithCode(getResult(reader), Code.NOT_FOUND);
    for (const [name, call] of [
      ['UpdateActionResult', updateResult(reader)],
      ['BatchUpdateBlobs', upload(reader, [BLOB])],
      ['ByteStream.Write', writeBlob(reader)],
      ['PushBlob', pushBlob(reader)],
      ['CreateBotSession', createBotSession(reader)],
      ['Execute', execute(reader)],
    ] as const) {
      const error = await rejectsWithCode(call, Code.PERMISSION_DENIED, name);
      assert.match(error.message, /token "reader" does not have the "[a-z-]+" scope/, name);
    }
  });

  it('lets a CAS uploader write blobs but never action results', async () => {
    const uploader = as(TOKENS.uploader);
    await upload(uploader, [Buffer.from('uploaded by the uploader')]);
    await writeBlob(uploader);
    const error = await rejectsWithCode(updateResult(uploader), Code.PERMISSION_DENIED);
    assert.match(error.message, /"ac-write" scope/);
  });

  it('lets an ac-write token write action results', async () => {
    await upload(as(TOKENS.writer), [BLOB]);
    const written = await updateResult(as(TOKENS.writer));
    assert.equal(written.exitCode, 0);
  });

  it('tells each caller, in GetCapabilities, whether it may update the action cache and execute there', async () => {
    const reader = await capabilities(as(TOKENS.reader));
    assert.equal(reader.cacheCapabilities?.actionCacheUpdateCapabilities?.updateEnabled, false);
    assert.equal(reader.executionCapabilities?.execEnabled, false);
    const writer = await capabilities(as(TOKENS.writer));
    assert.equal(writer.cacheCapabilities?.actionCacheUpdateCapabilities?.updateEnabled, true);
    const executor = await capabilities(as(TOKENS.teamExecutor, 'team/linux'));
    assert.equal(executor.executionCapabilities?.execEnabled, true);
    await rejectsWithCode(capabilities(as(TOKENS.teamExecutor, 'elsewhere')), Code.PERMISSION_DENIED);
  });

  it('limits execution to the instances of the token, operations included', async () => {
    const team = as(TOKENS.teamExecutor, 'team/linux');
    const operation = await execute(team);
    assert.match(operation.name, /^operations\//);
    assert.equal((await getOperation(team, operation.name)).name, operation.name);
    const error = await rejectsWithCode(
      getOperation(as(TOKENS.otherExecutor, 'other'), operation.name),
      Code.PERMISSION_DENIED,
    );
    assert.match(error.message, /instance "team\/linux"/);
    await rejectsWithCode(execute(as(TOKENS.teamExecutor, '')), Code.PERMISSION_DENIED);
    await rejectsWithCode(getOperation(team, 'operations/unknown'), Code.PERMISSION_DENIED);
    await rejectsWithCode(getOperation(as(TOKENS.otherExecutor, ''), 'operations/unknown'), Code.PERMISSION_DENIED);
  });

  it('lets only bots tokens open bot sessions', async () => {
    const session = (await createBotSession(as(TOKENS.bot))) as { name: string };
    assert.match(session.name, /botSessions\//);
    await rejectsWithCode(createBotSession(as(TOKENS.writer)), Code.PERMISSION_DENIED);
  });
});
