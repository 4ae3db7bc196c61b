/**
 * The Execution, Operations and Bots services end to end: an in-process farm, a
 * real grpc-js client, and a fake bot speaking the Remote Workers API that
 * "runs" each leased action by answering with a canned ExecuteResponse.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ClientReadableStream, type ClientUnaryCall, Metadata, type ServiceError } from '@grpc/grpc-js';
import { rejectsWithCode } from '../../test/support/status.js';
import { type Connection, connect, unary } from '../client/connection.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestKey, digestOf } from '../digest/digest.js';
import {
  Action,
  type ActionResult,
  type BatchUpdateBlobsResponse,
  Command,
  DigestFunction_Value,
  Digest as DigestMessage,
  Directory,
  ExecuteOperationMetadata,
  ExecuteRequest,
  ExecuteResponse,
  ExecutionStage_Value,
  type ServerCapabilities,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import {
  BotSession,
  BotStatus,
  BotsClient,
  type Lease,
  LeaseState,
} from '../gen/google/devtools/remoteworkers/v1test2/bots.js';
import type { ListOperationsResponse, Operation } from '../gen/google/longrunning/operations.js';
import { PreconditionFailure, type PreconditionFailure_Violation } from '../gen/google/rpc/error_details.js';
import { Status } from '../gen/google/rpc/status.js';
import { type RunningFarm, startFarm } from '../server/farm.js';
import { Code } from '../util/status.js';
import { durationFromMs } from '../util/time.js';
import { dial } from './dial.js';

const EXECUTE_RESPONSE_TYPE = 'type.googleapis.com/build.bazel.remote.execution.v2.ExecuteResponse';
const OUTPUT = Buffer.from('the output file\n');
const OUTPUT_DIGEST = digestOf(OUTPUT);
const INPUT = Buffer.from('an input file\n');
const INPUT_DIGEST = digestOf(INPUT);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A bot that runs nothing: each leased action "succeeds" at once with an
 * ExecuteResponse whose output file is OUTPUT (exit code per action), or, while
 * `hold` is set, stays ACTIVE until finishHeld().
 */
class FakeBot {
  readonly client: BotsClient;
  sessionName = '';
  /** Action digests of every lease received. */
  readonly executed: Digest[] = [];
  /** Ids of leases the server cancelled. */
  readonly cancelled: string[] = [];
  readonly exitCodes = new Map<string, number>();
  hold = false;
  private readonly leases = new Map<string, Lease & { digest?: Digest }>();
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private call: ClientUnaryCall | undefined;
  private interrupted = false;

  constructor(
    target: string,
    private readonly slots = 4,
  ) {
    this.client = dial(target).client(BotsClient);
  }

  async start(): Promise<void> {
    const session = await unary<BotSession>((done) =>
      this.client.createBotSession({ parent: '', botSession: this.message('') }, done),
    );
    this.sessionName = session.name;
    this.handle(session.leases);
    this.resume();
  }

  /** Stops calling the server (the session stays, as with a bot that is slow to call again). */
  async pause(): Promise<void> {
    this.running = false;
    this.interrupt();
    await this.loopDone;
  }

  resume(): void {
    this.running = true;
    this.loopDone = this.loop();
  }

  /** Completes every held lease and reports at once. */
  finishHeld(): void {
    for (const [id, lease] of this.leases) {
      if (lease.state === LeaseState.ACTIVE && lease.digest) this.leases.set(id, this.completed(lease, lease.digest));
    }
    this.interrupt();
  }

  async stop(): Promise<void> {
    await this.pause();
    this.client.close();
  }

  executionsOf(digest: Digest): number {
    return this.executed.filter((d) => digestKey(d) === digestKey(digest)).length;
  }

  private interrupt(): void {
    this.interrupted = true;
    this.call?.cancel();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const reported = [...this.leases.values()];
      this.interrupted = false;
      let session: BotSession;
      try {
        session = await this.update(reported);
      } catch (error) {
        if (this.interrupted && ((error as ServiceError).code as number) === Code.CANCELLED) continue;
        if (!this.running) return;
        throw error;
      }
      for (const lease of reported) if (lease.state === LeaseState.COMPLETED) this.leases.delete(lease.id);
      const before = this.leases.size;
      this.handle(session.leases);
      // With every slot busy the server answers at once: do not spin.
      if (this.leases.size >= this.slots && this.leases.size === before) await sleep(10);
    }
  }

  private handle(leases: Lease[]): void {
    for (const lease of leases) {
      if (lease.state === LeaseState.CANCELLED) {
        if (this.leases.delete(lease.id)) this.cancelled.push(lease.id);
        continue;
      }
      if (lease.state !== LeaseState.PENDING || this.leases.has(lease.id)) continue;
      const digest = DigestMessage.decode(lease.payload?.value ?? Buffer.alloc(0));
      this.executed.push(digest);
      const active = { ...lease, payload: undefined, state: LeaseState.ACTIVE, digest };
      this.leases.set(lease.id, this.hold ? active : this.completed(active, digest));
    }
  }

  private completed(lease: Lease, digest: Digest): Lease & { digest?: Digest } {
    const response = ExecuteResponse.fromPartial({
      result: {
        exitCode: this.exitCodes.get(digest.hash) ?? 0,
        outputFiles: [{ path: 'out.txt', digest: OUTPUT_DIGEST, isExecutable: false }],
        executionMetadata: { worker: 'fake-bot' },
      },
      status: { code: Code.OK, message: '', details: [] },
    });
    return {
      ...lease,
      state: LeaseState.COMPLETED,
      result: { typeUrl: EXECUTE_RESPONSE_TYPE, value: Buffer.from(ExecuteResponse.encode(response).finish()) },
      status: { code: Code.OK, message: '', details: [] },
    };
  }

  private message(name: string, leases: Array<Lease & { digest?: Digest }> = []): BotSession {
    return BotSession.fromPartial({
      name,
      botId: 'fake-bot',
      status: BotStatus.OK,
      worker: {
        properties: [
          { key: 'OSFamily', value: 'linux' },
          { key: 'slots', value: String(this.slots) },
        ],
      },
      leases: leases.map(({ digest: _digest, ...lease }) => lease),
    });
  }

  private update(leases: Array<Lease & { digest?: Digest }>): Promise<BotSession> {
    return new Promise((resolve, reject) => {
      this.call = this.client.updateBotSession(
        { name: this.sessionName, botSession: this.message(this.sessionName, leases), updateMask: undefined },
        new Metadata(),
        { deadline: Date.now() + 10_000 },
        (error, session) => {
          this.call = undefined;
          if (error) reject(error);
          else resolve(session);
        },
      );
    });
  }
}

let farm: RunningFarm;
let client: Connection;
let bot: FakeBot;

before(async () => {
  farm = await startFarm({
    listen: '127.0.0.1:0',
    cas: { memory: { maxSizeBytes: 1 << 30 } },
    actionCache: { memory: { maxSizeBytes: 1 << 26 } },
  });
  client = connect(`grpc://${farm.address}`);
  bot = new FakeBot(`grpc://${farm.address}`);
  await bot.start();
  await upload([OUTPUT, INPUT]);
});

after(async () => {
  await bot.stop();
  client.close();
  await farm.close();
});

async function upload(blobs: Buffer[]): Promise<void> {
  const response = await unary<BatchUpdateBlobsResponse>((done) =>
    client.cas.batchUpdateBlobs(
      {
        instanceName: '',
        digestFunction: 0,
        requests: blobs.map((data) => ({ digest: digestOf(data), data, compressor: 0 })),
      },
      done,
    ),
  );
  for (const r of response.responses) assert.equal(r.status?.code ?? 0, 0);
}

let actionCount = 0;

interface ActionOptions {
  platform?: Record<string, string>;
  timeoutSeconds?: number;
  doNotCache?: boolean;
  skip?: Array<'action' | 'command' | 'input'>;
}

/** Uploads a new, distinct action (unless told to leave parts out) and returns its digest and parts. */
async function newAction(options: ActionOptions = {}) {
  const n = actionCount++;
  const command = Buffer.from(
    Command.encode(Command.fromPartial({ arguments: ['/bin/echo', `action ${n}`], outputPaths: ['out.txt'] })).finish(),
  );
  const input = Buffer.from(
    Directory.encode(Directory.fromPartial({ files: [{ name: `input-${n}.txt`, digest: INPUT_DIGEST }] })).finish(),
  );
  const action = Buffer.from(
    Action.encode(
      Action.fromPartial({
        commandDigest: digestOf(command),
        inputRootDigest: digestOf(input),
        doNotCache: options.doNotCache ?? false,
        timeout: options.timeoutSeconds === undefined ? undefined : { seconds: options.timeoutSeconds, nanos: 0 },
        platform: options.platform
          ? { properties: Object.entries(options.platform).map(([name, value]) => ({ name, value })) }
          : undefined,
      }),
    ).finish(),
  );
  const skip = new Set(options.skip ?? []);
  const parts = { action, command, input };
  await upload((Object.keys(parts) as Array<keyof typeof parts>).filter((k) => !skip.has(k)).map((k) => parts[k]));
  return { digest: digestOf(action), commandDigest: digestOf(command), inputDigest: digestOf(input) };
}

interface ExecuteCall {
  /** Every operation message, once the stream ends. */
  operations: Promise<Operation[]>;
  /** The first operation message. */
  first: Promise<Operation>;
  cancel(): void;
}

function startExecute(request: Partial<ExecuteRequest>): ExecuteCall {
  return watchOperations(client.execution.execute(ExecuteRequest.fromPartial(request)));
}

/** The operation messages of an Execute or WaitExecution stream, as they come. */
function watchOperations(stream: ClientReadableStream<Operation>): ExecuteCall {
  const received: Operation[] = [];
  let resolveFirst!: (op: Operation) => void;
  let rejectFirst!: (error: unknown) => void;
  const first = new Promise<Operation>((resolve, reject) => {
    resolveFirst = resolve;
    rejectFirst = reject;
  });
  const operations = new Promise<Operation[]>((resolve, reject) => {
    stream.on('data', (op: Operation) => {
      received.push(op);
      if (received.length === 1) resolveFirst(op);
    });
    stream.on('end', () => resolve(received));
    stream.on('error', (error: unknown) => {
      rejectFirst(error);
      reject(error);
    });
  });
  // Callers may only look at one of the two.
  first.catch(() => {});
  operations.catch(() => {});
  return { operations, first, cancel: () => stream.cancel() };
}

function execute(request: Partial<ExecuteRequest>): Promise<Operation[]> {
  return startExecute(request).operations;
}

function stageOf(op: Operation): ExecutionStage_Value {
  return ExecuteOperationMetadata.decode(op.metadata?.value ?? Buffer.alloc(0)).stage;
}

function responseOf(op: Operation | undefined): ExecuteResponse {
  assert.ok(op?.done, 'the operation is done');
  assert.ok(op.response, 'a done operation carries an ExecuteResponse');
  assert.match(op.response.typeUrl, /build\.bazel\.remote\.execution\.v2\.ExecuteResponse$/);
  return ExecuteResponse.decode(op.response.value);
}

async function executeToCompletion(
  request: Partial<ExecuteRequest>,
): Promise<{ operations: Operation[]; response: ExecuteResponse }> {
  const operations = await execute(request);
  return { operations, response: responseOf(operations.at(-1)) };
}

function violationsOf(error: unknown): PreconditionFailure_Violation[] {
  const raw = (error as ServiceError).metadata?.get('grpc-status-details-bin')[0];
  assert.ok(raw instanceof Buffer, 'the error carries grpc-status-details-bin');
  const status = Status.decode(raw);
  assert.equal(status.code, Code.FAILED_PRECONDITION);
  const detail = status.details.find((d) => d.typeUrl === 'type.googleapis.com/google.rpc.PreconditionFailure');
  assert.ok(detail, 'the status details hold a PreconditionFailure');
  return PreconditionFailure.decode(detail.value).violations;
}

async function rejectsWithRawCode(promise: Promise<unknown>, code: Code): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    assert.equal(Code[(error as ServiceError).code as number], Code[code], (error as Error).message);
    return error as ServiceError;
  }
  assert.fail(`expected ${Code[code]}, but the call succeeded`);
}

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}

describe('Capabilities of a farm', { timeout: 10_000 }, () => {
  it('advertises execution with SHA256 as its digest function', async () => {
    const capabilities = await unary<ServerCapabilities>((done) =>
      client.capabilities.getCapabilities({ instanceName: '' }, done),
    );
    assert.equal(capabilities.executionCapabilities?.execEnabled, true);
    assert.equal(capabilities.executionCapabilities?.digestFunction, DigestFunction_Value.SHA256);
    assert.ok(capabilities.executionCapabilities?.digestFunctions.includes(DigestFunction_Value.SHA256));
  });
});

describe('Execute', { timeout: 10_000 }, () => {
  it('streams QUEUED, EXECUTING and COMPLETED operations, ending done with the ExecuteResponse', async () => {
    const { digest } = await newAction();
    await bot.pause();
    // The server must see the bot's abandoned long poll end, or that poll would take the action.
    await sleep(100);
    let first: Operation;
    const call = startExecute({ actionDigest: digest });
    try {
      first = await call.first;
    } finally {
      bot.resume();
    }
    assert.equal(stageOf(first), ExecutionStage_Value.QUEUED);
    assert.equal(first.done, false);
    assert.match(first.name, /^operations\//);
    const metadata = ExecuteOperationMetadata.decode(first.metadata?.value ?? Buffer.alloc(0));
    assert.deepEqual(metadata.actionDigest, digest);
    const operations = await call.operations;
    assert.deepEqual(operations.map(stageOf), [
      ExecutionStage_Value.QUEUED,
      ExecutionStage_Value.EXECUTING,
      ExecutionStage_Value.COMPLETED,
    ]);
    assert.deepEqual(
      operations.map((op) => op.done),
      [false, false, true],
    );
    assert.ok(operations.every((op) => op.name === first.name));
    const response = responseOf(operations.at(-1));
    assert.equal(response.status?.code ?? Code.OK, Code.OK);
    assert.equal(response.cachedResult, false);
    assert.equal(response.result?.exitCode, 0);
    assert.deepEqual(
      response.result?.outputFiles.map((f) => [f.path, f.digest]),
      [['out.txt', OUTPUT_DIGEST]],
    );
    assert.equal(response.result?.executionMetadata?.worker, 'fake-bot');
    assert.ok(response.result?.executionMetadata?.queuedTimestamp, 'the farm fills in when the action was queued');
    assert.equal(bot.executionsOf(digest), 1);
  });

  it('stores a successful result in the action cache and answers the next Execute from it without the bot', async () => {
    const { digest } = await newAction();
    await executeToCompletion({ actionDigest: digest });
    const stored = await unary<ActionResult>((done) =>
      client.actionCache.getActionResult(
        {
          instanceName: '',
          actionDigest: digest,
          inlineStdout: false,
          inlineStderr: false,
          inlineOutputFiles: [],
          digestFunction: 0,
        },
        done,
      ),
    );
    assert.equal(stored.exitCode, 0);
    assert.deepEqual(
      stored.outputFiles.map((f) => f.digest),
      [OUTPUT_DIGEST],
    );

    const { operations, response } = await executeToCompletion({
      actionDigest: digest,
      inlineOutputFiles: ['out.txt'],
    });
    assert.equal(operations.length, 1, 'a cache hit completes at once');
    assert.equal(response.cachedResult, true);
    assert.equal(response.result?.exitCode, 0);
    assert.equal(
      response.result?.outputFiles[0]?.contents.toString(),
      OUTPUT.toString(),
      'requested outputs are inlined',
    );
    assert.equal(bot.executionsOf(digest), 1, 'the bot was not involved');
  });

  it('runs the action again when skip_cache_lookup is set', async () => {
    const { digest } = await newAction();
    await executeToCompletion({ actionDigest: digest });
    const { response } = await executeToCompletion({ actionDigest: digest, skipCacheLookup: true });
    assert.equal(response.cachedResult, false);
    assert.equal(bot.executionsOf(digest), 2);
  });

  it('does not cache a result with a non-zero exit code', async () => {
    const { digest } = await newAction();
    bot.exitCodes.set(digest.hash, 1);
    const first = await executeToCompletion({ actionDigest: digest });
    assert.equal(first.response.result?.exitCode, 1);
    assert.equal(first.response.status?.code ?? Code.OK, Code.OK, 'a failing command is not a failed execution');
    const second = await executeToCompletion({ actionDigest: digest });
    assert.equal(second.response.cachedResult, false);
    assert.equal(bot.executionsOf(digest), 2);
  });

  it('does not cache the result of an action marked do_not_cache', async () => {
    const { digest } = await newAction({ doNotCache: true });
    await executeToCompletion({ actionDigest: digest });
    const { response } = await executeToCompletion({ actionDigest: digest });
    assert.equal(response.cachedResult, false);
    assert.equal(bot.executionsOf(digest), 2);
  });

  it('runs identical concurrent requests once and gives both the same operation', async () => {
    const { digest } = await newAction();
    bot.hold = true;
    try {
      const a = startExecute({ actionDigest: digest });
      const b = startExecute({ actionDigest: digest });
      assert.equal((await a.first).name, (await b.first).name);
      await until(() => bot.executionsOf(digest) === 1);
      bot.finishHeld();
      const [opsA, opsB] = await Promise.all([a.operations, b.operations]);
      assert.equal(responseOf(opsA.at(-1)).result?.exitCode, 0);
      assert.equal(responseOf(opsB.at(-1)).result?.exitCode, 0);
      assert.equal(bot.executionsOf(digest), 1);
    } finally {
      bot.hold = false;
    }
  });

  for (const part of ['action', 'command', 'input'] as const) {
    it(`fails with FAILED_PRECONDITION and a MISSING violation when the ${part} is not in the CAS`, async () => {
      const made = await newAction({ skip: [part] });
      const missing = { action: made.digest, command: made.commandDigest, input: made.inputDigest }[part];
      const error = await rejectsWithRawCode(execute({ actionDigest: made.digest }), Code.FAILED_PRECONDITION);
      const violations = violationsOf(error);
      assert.deepEqual(
        violations.map((v) => [v.type, v.subject]),
        [['MISSING', `blobs/${missing.hash}/${missing.sizeBytes}`]],
      );
    });
  }

  it('fails fast with FAILED_PRECONDITION when no connected worker satisfies the platform', async () => {
    const { digest } = await newAction({ platform: { OSFamily: 'Windows' } });
    const started = Date.now();
    const error = await rejectsWithRawCode(execute({ actionDigest: digest }), Code.FAILED_PRECONDITION);
    assert.ok(Date.now() - started < 1_000);
    assert.ok(violationsOf(error).length > 0);
    const runnable = await newAction({ platform: { OSFamily: 'linux' } });
    const { response } = await executeToCompletion({ actionDigest: runnable.digest });
    assert.equal(response.result?.exitCode, 0);
  });

  it('rejects an action whose timeout exceeds the maximum with INVALID_ARGUMENT', async () => {
    const { digest } = await newAction({ timeoutSeconds: 24 * 60 * 60 });
    await rejectsWithRawCode(execute({ actionDigest: digest }), Code.INVALID_ARGUMENT);
  });

  it('rejects a malformed action digest with INVALID_ARGUMENT', async () => {
    await rejectsWithRawCode(execute({ actionDigest: { hash: 'nothex', sizeBytes: 1 } }), Code.INVALID_ARGUMENT);
    await rejectsWithRawCode(execute({}), Code.INVALID_ARGUMENT);
  });
});

describe('WaitExecution', { timeout: 10_000 }, () => {
  it('streams a known operation to its completion', async () => {
    const { digest } = await newAction();
    bot.hold = true;
    try {
      const call = startExecute({ actionDigest: digest });
      const name = (await call.first).name;
      call.cancel();
      await until(() => bot.executionsOf(digest) === 1);
      const waiting = startExecuteWait(name);
      const first = await waiting.first;
      assert.equal(first.name, name);
      assert.equal(first.done, false);
      assert.equal(
        stageOf(first),
        ExecutionStage_Value.EXECUTING,
        'cancelling the Execute call did not cancel the action',
      );
      bot.finishHeld();
      const operations = await waiting.operations;
      assert.equal(responseOf(operations.at(-1)).result?.exitCode, 0);
    } finally {
      bot.hold = false;
    }
  });

  it('streams a completed operation as a single done message', async () => {
    const { digest } = await newAction();
    const { operations } = await executeToCompletion({ actionDigest: digest });
    const name = operations[0]?.name as string;
    const again = await startExecuteWait(name).operations;
    assert.equal(again.length, 1);
    assert.equal(responseOf(again[0]).result?.exitCode, 0);
  });

  it('fails with NOT_FOUND for an unknown operation', async () => {
    await rejectsWithRawCode(startExecuteWait('operations/unknown').operations, Code.NOT_FOUND);
  });
});

function startExecuteWait(name: string): ExecuteCall {
  return watchOperations(client.execution.waitExecution({ name }));
}

describe('the farm’s admin view', { timeout: 10_000 }, () => {
  it('shows the connected bot with its id and slots, and the lease it holds', async () => {
    const { name, call } = await (async () => {
      const { digest } = await newAction();
      bot.hold = true;
      const started = startExecute({ actionDigest: digest });
      const first = await started.first;
      await until(() => bot.executionsOf(digest) === 1);
      return { name: first.name, call: started };
    })();
    try {
      const workers = await farm.admin.workers(backgroundContext());
      const fake = workers.find((w) => w.botId === 'fake-bot' && w.goneAtMs === undefined);
      assert.ok(fake, `the bot is listed: ${JSON.stringify(workers.map((w) => w.botId))}`);
      assert.equal(fake.slots, 4);
      assert.deepEqual(
        fake.leases.map((l) => l.name),
        [name],
      );
      const executing = await farm.admin.operations(backgroundContext(), { stage: 'EXECUTING' });
      assert.ok(executing.operations.some((o) => o.name === name && o.workerId === fake.id));
    } finally {
      bot.hold = false;
      bot.finishHeld();
      await call.operations;
    }
  });
});

describe('Operations', { timeout: 10_000 }, () => {
  const getOperation = (name: string) => unary<Operation>((done) => client.operations.getOperation({ name }, done));
  const cancelOperation = (name: string) => unary<object>((done) => client.operations.cancelOperation({ name }, done));
  const deleteOperation = (name: string) => unary<object>((done) => client.operations.deleteOperation({ name }, done));
  const waitOperation = (name: string, timeoutMs?: number) =>
    unary<Operation>((done) =>
      client.operations.waitOperation(
        {
          name,
          timeout: timeoutMs === undefined ? undefined : durationFromMs(timeoutMs),
        },
        done,
      ),
    );
  const listOperations = (pageSize = 0, pageToken = '') =>
    unary<ListOperationsResponse>((done) =>
      client.operations.listOperations(
        { name: '', filter: '', pageSize, pageToken, returnPartialSuccess: false },
        done,
      ),
    );

  async function completedOperation(): Promise<string> {
    const { digest } = await newAction();
    const { operations } = await executeToCompletion({ actionDigest: digest });
    return operations[0]?.name as string;
  }

  /** An operation held EXECUTING on the bot; call finishHeld() (and clear hold) to end it. */
  async function heldOperation(): Promise<{ name: string; digest: Digest; call: ExecuteCall }> {
    const { digest } = await newAction();
    bot.hold = true;
    const call = startExecute({ actionDigest: digest });
    const name = (await call.first).name;
    await until(() => bot.executionsOf(digest) === 1);
    return { name, digest, call };
  }

  it('GetOperation returns a known operation and NOT_FOUND for an unknown one', async () => {
    const name = await completedOperation();
    const op = await getOperation(name);
    assert.equal(op.name, name);
    assert.equal(stageOf(op), ExecutionStage_Value.COMPLETED);
    assert.equal(responseOf(op).result?.exitCode, 0);
    await rejectsWithCode(getOperation('operations/unknown'), Code.NOT_FOUND);
  });

  it('ListOperations lists operations in pages', async () => {
    const names = [await completedOperation(), await completedOperation()];
    const all = await listOperations();
    for (const name of names) assert.ok(all.operations.some((op) => op.name === name));
    assert.equal(all.nextPageToken, '');
    const pageOne = await listOperations(1);
    assert.equal(pageOne.operations.length, 1);
    assert.notEqual(pageOne.nextPageToken, '');
    const pageTwo = await listOperations(1, pageOne.nextPageToken);
    assert.equal(pageTwo.operations.length, 1);
    assert.notEqual(pageTwo.operations[0]?.name, pageOne.operations[0]?.name);
    await rejectsWithCode(listOperations(1, 'garbage'), Code.INVALID_ARGUMENT);
  });

  it('CancelOperation ends an executing operation with CANCELLED and stops it on the bot', async () => {
    const { name, call } = await heldOperation();
    try {
      await cancelOperation(name);
      const operations = await call.operations;
      const response = responseOf(operations.at(-1));
      assert.equal(response.status?.code, Code.CANCELLED);
      await until(() => bot.cancelled.includes(name));
      const op = await getOperation(name);
      assert.equal(responseOf(op).status?.code, Code.CANCELLED);
      await rejectsWithCode(cancelOperation('operations/unknown'), Code.NOT_FOUND);
    } finally {
      bot.hold = false;
      bot.finishHeld();
    }
  });

  it('DeleteOperation forgets an operation', async () => {
    const name = await completedOperation();
    await deleteOperation(name);
    await rejectsWithCode(getOperation(name), Code.NOT_FOUND);
    await rejectsWithCode(deleteOperation(name), Code.NOT_FOUND);
  });

  it('WaitOperation returns when the operation completes, or unfinished at its timeout', async () => {
    const { name, call } = await heldOperation();
    try {
      const started = Date.now();
      const unfinished = await waitOperation(name, 100);
      assert.ok(Date.now() - started >= 90);
      assert.equal(unfinished.done, false);
      const waiting = waitOperation(name);
      await sleep(30);
      bot.finishHeld();
      const finished = await waiting;
      assert.equal(responseOf(finished).result?.exitCode, 0);
      await call.operations;
      const again = await waitOperation(name);
      assert.equal(again.done, true, 'a completed operation is returned at once');
      const watchers = (farm.scheduler as unknown as { watchers: Map<string, unknown> }).watchers;
      assert.equal(watchers.has(name), false, 'waiting left no watcher behind (it would keep the operation forever)');
      await rejectsWithCode(waitOperation('operations/unknown'), Code.NOT_FOUND);
    } finally {
      bot.hold = false;
      bot.finishHeld();
    }
  });
});
