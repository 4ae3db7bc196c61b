import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { actionRequest } from '../../test/support/schedulerContract.js';
import { until as waitUntil } from '../../test/support/waiting.js';
import { backgroundContext } from '../context/requestContext.js';
import {
  Action,
  ActionResult,
  Digest,
  ExecuteResponse,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { BotSession, BotStatus, type Lease, LeaseState } from '../gen/google/devtools/remoteworkers/v1test2/bots.js';
import { ActionAssignment } from '../gen/granary/worker/v1/lease.js';
import { Code, StatusError } from '../util/status.js';
import { BotSessions, type BotSessionsOptions } from './botSessions.js';
import { openScheduler, type SchedulerSettings } from './openScheduler.js';
import type { OperationScheduler } from './operationScheduler.js';

const ctx = backgroundContext();

const DIGEST_TYPE = 'type.googleapis.com/build.bazel.remote.execution.v2.Digest';
const EXECUTE_RESPONSE_TYPE = 'type.googleapis.com/build.bazel.remote.execution.v2.ExecuteResponse';
const ACTION_RESULT_TYPE = 'type.googleapis.com/build.bazel.remote.execution.v2.ActionResult';

interface Farm {
  scheduler: OperationScheduler;
  sessions: BotSessions;
}

const running: Farm[] = [];
afterEach(async () => {
  for (const farm of running.splice(0)) {
    farm.sessions.close();
    await farm.scheduler.close();
  }
});

/** A scheduler and bot sessions; long polls are short unless a test asks otherwise. */
async function farm(options: BotSessionsOptions = {}, schedulerOptions: SchedulerSettings = {}): Promise<Farm> {
  const scheduler = await openScheduler(schedulerOptions);
  const sessions = new BotSessions(scheduler, { longPollMs: 30, ...options });
  const made = { scheduler, sessions };
  running.push(made);
  return made;
}

/** What a bot sends: its properties (`slots` among them, if any) and the leases it holds. */
function botMessage(
  leases: Lease[] = [],
  properties: Record<string, string> = { OSFamily: 'linux' },
  status = BotStatus.OK,
  botId = 'bot-1',
) {
  return BotSession.fromPartial({
    botId,
    status,
    worker: { properties: Object.entries(properties).map(([key, value]) => ({ key, value })), devices: [] },
    leases,
  });
}

const deadline = () => Date.now() + 60_000;

function withState(lease: Lease, state: LeaseState, extra: Partial<Lease> = {}): Lease {
  return { ...lease, state, ...extra };
}

function executeResponseAny(response: ExecuteResponse) {
  return { typeUrl: EXECUTE_RESPONSE_TYPE, value: Buffer.from(ExecuteResponse.encode(response).finish()) };
}

async function oneLease(f: Farm, name: string): Promise<Lease> {
  const session = await f.sessions.update(ctx, name, botMessage(), deadline());
  assert.equal(session.leases.length, 1);
  return session.leases[0] as Lease;
}

describe('BotSessions', () => {
  describe('handing out leases', () => {
    it('gives a bot a PENDING lease whose payload is the action digest as an Any of Digest', async () => {
      const f = await farm();
      const session = await f.sessions.create(ctx, '', botMessage());
      assert.match(session.name, /botSessions\//);
      assert.equal(session.botId, 'bot-1');
      assert.deepEqual(session.leases, []);
      assert.ok(session.expireTime && session.expireTime.seconds * 1000 > Date.now());
      const request = actionRequest(1);
      const op = await f.scheduler.submit(ctx, request);
      const lease = await oneLease(f, session.name);
      assert.equal(lease.id, op.name);
      assert.equal(lease.state, LeaseState.PENDING);
      assert.equal(lease.payload?.typeUrl, DIGEST_TYPE);
      assert.deepEqual(Digest.decode(lease.payload?.value ?? Buffer.alloc(0)), request.actionDigest);
      const record = await f.scheduler.get(ctx, op.name);
      assert.equal(record?.stage, 'EXECUTING');
      assert.equal(record?.workerId, session.name);
    });

    it('hands out work already queued when the session is created', async () => {
      const f = await farm();
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage());
      assert.deepEqual(
        session.leases.map((l) => [l.id, l.state]),
        [[op.name, LeaseState.PENDING]],
      );
    });

    it('names sessions under the parent given at creation', async () => {
      const f = await farm();
      const session = await f.sessions.create(ctx, 'farms/main', botMessage());
      assert.match(session.name, /^farms\/main\/botSessions\/./);
    });

    it('refuses a session without a bot id', async () => {
      const f = await farm();
      await assert.rejects(f.sessions.create(ctx, '', BotSession.fromPartial({ botId: '' })), (error: unknown) => {
        assert.ok(error instanceof StatusError);
        assert.equal(error.code, Code.INVALID_ARGUMENT);
        return true;
      });
    });

    it('gives a bot advertising slots=3 up to three leases, and one without slots a single lease', async () => {
      const f = await farm();
      for (let i = 0; i < 5; i++) await f.scheduler.submit(ctx, actionRequest(i));
      const big = await f.sessions.create(ctx, '', botMessage([], { OSFamily: 'linux', slots: '3' }));
      assert.equal(big.leases.length, 3);
      const again = await f.sessions.update(
        ctx,
        big.name,
        botMessage(big.leases, { OSFamily: 'linux', slots: '3' }),
        deadline(),
      );
      assert.equal(again.leases.length, 3, 'no more while all three slots are busy');
      const small = await f.sessions.create(ctx, '', botMessage([], undefined, undefined, 'bot-2'));
      assert.equal(small.leases.length, 1);
      const smallAgain = await f.sessions.update(
        ctx,
        small.name,
        botMessage(small.leases, undefined, undefined, 'bot-2'),
        deadline(),
      );
      assert.equal(smallAgain.leases.length, 1);
      assert.equal((await f.scheduler.list(ctx)).operations.filter((o) => o.stage === 'QUEUED').length, 1);
    });

    it('gives the work of an older session back to the queue when the same bot creates a new one', async () => {
      const f = await farm();
      await f.scheduler.submit(ctx, actionRequest(1));
      const first = await f.sessions.create(ctx, '', botMessage());
      assert.equal(first.leases.length, 1);
      const second = await f.sessions.create(ctx, '', botMessage());
      assert.equal(second.leases.length, 1, 'the re-queued action is handed to the new session');
      await assert.rejects(f.sessions.update(ctx, first.name, botMessage(first.leases), deadline()), {
        code: Code.NOT_FOUND,
      });
    });

    it('hands out only actions whose platform the bot satisfies, ignoring slots as a property', async () => {
      const f = await farm();
      const windows = await f.scheduler.submit(
        ctx,
        actionRequest('w', { platform: [{ name: 'OSFamily', value: 'Windows' }] }),
      );
      const slots = await f.scheduler.submit(ctx, actionRequest('s', { platform: [{ name: 'slots', value: '2' }] }));
      const linux = await f.scheduler.submit(
        ctx,
        actionRequest('l', { platform: [{ name: 'OSFamily', value: 'linux' }] }),
      );
      const session = await f.sessions.create(ctx, '', botMessage([], { OSFamily: 'linux', slots: '2' }));
      assert.deepEqual(
        session.leases.map((l) => l.id),
        [linux.name],
      );
      assert.equal((await f.scheduler.get(ctx, windows.name))?.stage, 'QUEUED');
      assert.equal((await f.scheduler.get(ctx, slots.name))?.stage, 'QUEUED');
    });

    it('keeps a bot’s properties when its updates omit them, and echoes its worker, as buildbox-worker needs', async () => {
      const f = await farm();
      const created = await f.sessions.create(ctx, '', botMessage([], { OSFamily: 'linux', ISA: 'x86-64' }));
      assert.deepEqual(
        created.worker?.properties.map((p) => `${p.key}=${p.value}`),
        ['OSFamily=linux', 'ISA=x86-64'],
      );
      // buildbox-worker sends back the session it was answered, with worker.configs only.
      const bare = BotSession.fromPartial({
        name: created.name,
        botId: 'bot-1',
        status: BotStatus.OK,
        worker: { configs: [{ key: 'capacity', value: '1' }] },
      });
      const op = await f.scheduler.submit(
        ctx,
        actionRequest('x', {
          platform: [
            { name: 'ISA', value: 'x86-64' },
            { name: 'OSFamily', value: 'linux' },
          ],
        }),
      );
      const update = await f.sessions.update(ctx, created.name, bare, deadline());
      assert.deepEqual(
        update.leases.map((l) => l.id),
        [op.name],
      );
    });

    it('gives an unhealthy bot no new leases', async () => {
      const f = await farm();
      await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage([], undefined, BotStatus.UNHEALTHY));
      assert.deepEqual(session.leases, []);
      const update = await f.sessions.update(
        ctx,
        session.name,
        botMessage([], undefined, BotStatus.BOT_TERMINATING),
        deadline(),
      );
      assert.deepEqual(update.leases, []);
    });
  });

  describe('lease payloads', () => {
    const ASSIGNMENT_TYPE = 'type.googleapis.com/granary.worker.v1.ActionAssignment';
    /** The Action every test action reads as: no timeout of its own, one platform property. */
    const storedAction = Action.fromPartial({
      commandDigest: { hash: 'c'.repeat(64), sizeBytes: 10 },
      inputRootDigest: { hash: 'd'.repeat(64), sizeBytes: 20 },
      platform: { properties: [{ name: 'pool', value: 'a' }] },
    });
    const takesActions = { OSFamily: 'linux', 'lease-payload': 'action' };

    it('gives a bot that takes Actions the Action itself, its timeout the one the server decided, and the client digest', async () => {
      const f = await farm({ actionOf: async () => storedAction });
      const request = actionRequest(1, { timeoutMs: 90_500 });
      const op = await f.scheduler.submit(ctx, request);
      const session = await f.sessions.create(ctx, '', botMessage([], takesActions));
      const [lease] = session.leases;
      assert.equal(lease?.id, op.name);
      assert.equal(lease?.payload?.typeUrl, ASSIGNMENT_TYPE);
      const assignment = ActionAssignment.decode(lease?.payload?.value ?? Buffer.alloc(0));
      assert.deepEqual(assignment.actionDigest, request.actionDigest, 'the digest the client asked for');
      const action = assignment.action ?? assert.fail('the assignment carries the Action');
      assert.deepEqual(action.timeout, { seconds: 90, nanos: 500_000_000 });
      assert.deepEqual(action.commandDigest, storedAction.commandDigest, 'the rest of the Action is as stored');
      assert.deepEqual(action.platform, storedAction.platform);
    });

    it('gives the digest to a bot that did not ask for Actions, and when the Action cannot be read', async () => {
      const f = await farm({
        actionOf: async (_context, request) => (request.timeoutMs === 1 ? undefined : storedAction),
      });
      await f.scheduler.submit(ctx, actionRequest(1));
      const plain = await f.sessions.create(ctx, '', botMessage());
      assert.equal(plain.leases[0]?.payload?.typeUrl, DIGEST_TYPE);
      const unreadable = await f.scheduler.submit(ctx, actionRequest(2, { timeoutMs: 1 }));
      const taker = await f.sessions.create(ctx, '', botMessage([], takesActions, undefined, 'bot-2'));
      assert.equal(taker.leases[0]?.id, unreadable.name);
      assert.equal(taker.leases[0]?.payload?.typeUrl, DIGEST_TYPE);
      assert.deepEqual(
        Digest.decode(taker.leases[0]?.payload?.value ?? Buffer.alloc(0)),
        unreadable.request.actionDigest,
      );
    });

    it('never matches lease-payload as a platform property', async () => {
      const f = await farm({ actionOf: async () => storedAction });
      const op = await f.scheduler.submit(
        ctx,
        actionRequest(1, { platform: [{ name: 'lease-payload', value: 'action' }] }),
      );
      const session = await f.sessions.create(ctx, '', botMessage([], takesActions));
      assert.deepEqual(session.leases, [], 'the bot does not offer it as a property');
      assert.equal((await f.scheduler.get(ctx, op.name))?.stage, 'QUEUED');
    });
  });

  describe('results', () => {
    it('completes the operation with the ExecuteResponse of a COMPLETED lease and fills in queued_timestamp', async () => {
      const f = await farm();
      const session = await f.sessions.create(ctx, '', botMessage());
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const lease = await oneLease(f, session.name);
      const active = await f.sessions.update(
        ctx,
        session.name,
        botMessage([withState(lease, LeaseState.ACTIVE)]),
        deadline(),
      );
      assert.deepEqual(
        active.leases.map((l) => l.state),
        [LeaseState.ACTIVE],
      );
      assert.equal((await f.scheduler.get(ctx, op.name))?.stage, 'EXECUTING');
      const response = ExecuteResponse.fromPartial({
        result: { exitCode: 3, executionMetadata: { worker: 'bot-1' } },
        status: { code: Code.OK },
        message: 'ran it',
      });
      const done = await f.sessions.update(
        ctx,
        session.name,
        botMessage([
          withState(lease, LeaseState.COMPLETED, {
            result: executeResponseAny(response),
            status: { code: 0, message: '', details: [] },
          }),
        ]),
        deadline(),
      );
      assert.deepEqual(done.leases, []);
      const record = await f.scheduler.get(ctx, op.name);
      assert.equal(record?.stage, 'COMPLETED');
      assert.equal(record?.response?.result?.exitCode, 3);
      assert.equal(record?.response?.message, 'ran it');
      assert.equal(record?.response?.result?.executionMetadata?.worker, 'bot-1');
      assert.deepEqual(record?.response?.result?.executionMetadata?.queuedTimestamp, {
        seconds: Math.floor(op.queuedAtMs / 1000),
        nanos: (op.queuedAtMs % 1000) * 1e6,
      });
    });

    it('leaves execution metadata out when the bot sent none', async () => {
      const f = await farm();
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage());
      const [lease] = session.leases as [Lease];
      const response = ExecuteResponse.fromPartial({ result: { exitCode: 0 }, status: { code: Code.OK } });
      await f.sessions.update(
        ctx,
        session.name,
        botMessage([withState(lease, LeaseState.COMPLETED, { result: executeResponseAny(response) })]),
        deadline(),
      );
      const record = await f.scheduler.get(ctx, op.name);
      assert.equal(record?.stage, 'COMPLETED');
      assert.equal(record?.response?.result?.executionMetadata, undefined);
    });

    it('accepts an ActionResult as the result of a COMPLETED lease, as BuildBox sends it', async () => {
      const f = await farm();
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage());
      const [lease] = session.leases as [Lease];
      const result = ActionResult.fromPartial({ exitCode: 0, stdoutRaw: Buffer.from('hello') });
      await f.sessions.update(
        ctx,
        session.name,
        botMessage([
          withState(lease, LeaseState.COMPLETED, {
            result: { typeUrl: ACTION_RESULT_TYPE, value: Buffer.from(ActionResult.encode(result).finish()) },
            status: { code: 0, message: '', details: [] },
          }),
        ]),
        deadline(),
      );
      const record = await f.scheduler.get(ctx, op.name);
      assert.equal(record?.stage, 'COMPLETED');
      assert.equal(record?.response?.status?.code ?? Code.OK, Code.OK);
      assert.equal(record?.response?.result?.stdoutRaw.toString(), 'hello');
    });

    it('completes the operation with the lease status when the bot failed without a result', async () => {
      const f = await farm();
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage());
      const [lease] = session.leases as [Lease];
      await f.sessions.update(
        ctx,
        session.name,
        botMessage([
          withState(lease, LeaseState.COMPLETED, {
            status: { code: Code.FAILED_PRECONDITION, message: 'inputs missing', details: [] },
          }),
        ]),
        deadline(),
      );
      const response = (await f.scheduler.get(ctx, op.name))?.response;
      assert.equal(response?.status?.code, Code.FAILED_PRECONDITION);
      assert.equal(response?.status?.message, 'inputs missing');
    });

    it('fails the operation with INTERNAL when a successful lease carries no result or an undecodable one', async () => {
      const f = await farm();
      const empty = await f.scheduler.submit(ctx, actionRequest(1));
      const garbage = await f.scheduler.submit(ctx, actionRequest(2));
      const session = await f.sessions.create(ctx, '', botMessage([], { slots: '2' }));
      const [first, second] = session.leases as [Lease, Lease];
      assert.equal(first.id, empty.name);
      await f.sessions.update(
        ctx,
        session.name,
        botMessage(
          [
            withState(first, LeaseState.COMPLETED),
            withState(second, LeaseState.COMPLETED, {
              result: { typeUrl: EXECUTE_RESPONSE_TYPE, value: Buffer.from([0xff, 0xff, 0xff]) },
            }),
          ],
          { slots: '2' },
        ),
        deadline(),
      );
      assert.equal((await f.scheduler.get(ctx, empty.name))?.response?.status?.code, Code.INTERNAL);
      assert.equal((await f.scheduler.get(ctx, garbage.name))?.response?.status?.code, Code.INTERNAL);
    });

    it('ignores a result for a lease the session does not hold', async () => {
      const f = await farm();
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const holder = await f.sessions.create(ctx, '', botMessage());
      const other = await f.sessions.create(ctx, '', botMessage([], undefined, undefined, 'bot-2'));
      const [lease] = holder.leases as [Lease];
      const response = ExecuteResponse.fromPartial({ result: { exitCode: 0 } });
      await f.sessions.update(
        ctx,
        other.name,
        botMessage(
          [withState(lease, LeaseState.COMPLETED, { result: executeResponseAny(response) })],
          undefined,
          undefined,
          'bot-2',
        ),
        deadline(),
      );
      assert.equal((await f.scheduler.get(ctx, op.name))?.stage, 'EXECUTING');
    });
  });

  describe('lost and cancelled leases', () => {
    it('requeues a lease the bot stops mentioning, without counting an attempt', async () => {
      const f = await farm();
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage());
      assert.equal(session.leases.length, 1);
      const healthy = await f.sessions.update(
        ctx,
        session.name,
        botMessage([], undefined, BotStatus.UNHEALTHY),
        deadline(),
      );
      assert.deepEqual(healthy.leases, []);
      const record = await f.scheduler.get(ctx, op.name);
      assert.equal(record?.stage, 'QUEUED');
      assert.equal(record?.attempts, 0);
    });

    it('requeues a lease the bot gives up by reporting it CANCELLED', async () => {
      const f = await farm();
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage());
      const [lease] = session.leases as [Lease];
      await f.sessions.update(
        ctx,
        session.name,
        botMessage([withState(lease, LeaseState.CANCELLED)], undefined, BotStatus.UNHEALTHY),
        deadline(),
      );
      assert.equal((await f.scheduler.get(ctx, op.name))?.stage, 'QUEUED');
      assert.equal(await f.scheduler.shouldAbandon(ctx, session.name, op.name), true);
    });

    it('tells the bot a cancelled operation’s lease is CANCELLED until the bot lets go of it', async () => {
      const f = await farm();
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage());
      const [lease] = session.leases as [Lease];
      const active = withState(lease, LeaseState.ACTIVE);
      await f.sessions.update(ctx, session.name, botMessage([active]), deadline());
      await f.scheduler.cancel(ctx, op.name);
      const told = await f.sessions.update(ctx, session.name, botMessage([active]), deadline());
      assert.deepEqual(
        told.leases.map((l) => [l.id, l.state]),
        [[op.name, LeaseState.CANCELLED]],
      );
      // That answer may never reach the bot (it cancels its own long polls): it is told again.
      const toldAgain = await f.sessions.update(ctx, session.name, botMessage([active]), deadline());
      assert.deepEqual(
        toldAgain.leases.map((l) => l.state),
        [LeaseState.CANCELLED],
      );
      const acknowledged = await f.sessions.update(
        ctx,
        session.name,
        botMessage([withState(lease, LeaseState.CANCELLED)]),
        deadline(),
      );
      assert.deepEqual(acknowledged.leases, []);
      assert.equal((await f.scheduler.get(ctx, op.name))?.response?.status?.code, Code.CANCELLED);
    });

    it('frees the slot of a cancelled lease once the bot stops mentioning it, and ignores its late result', async () => {
      const f = await farm();
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage());
      const [lease] = session.leases as [Lease];
      await f.scheduler.cancel(ctx, op.name);
      await f.sessions.update(ctx, session.name, botMessage([withState(lease, LeaseState.ACTIVE)]), deadline());
      const late = ExecuteResponse.fromPartial({ result: { exitCode: 0 } });
      const next = await f.scheduler.submit(ctx, actionRequest(2));
      const finished = await f.sessions.update(
        ctx,
        session.name,
        botMessage([withState(lease, LeaseState.COMPLETED, { result: executeResponseAny(late) })]),
        deadline(),
      );
      assert.deepEqual(
        finished.leases.map((l) => l.id),
        [next.name],
      );
      assert.equal((await f.scheduler.get(ctx, op.name))?.response?.status?.code, Code.CANCELLED);
    });
  });

  describe('sessions', () => {
    it('rejects an update of an unknown session with NOT_FOUND', async () => {
      const f = await farm();
      await assert.rejects(
        f.sessions.update(ctx, 'botSessions/unknown', botMessage(), deadline()),
        (error: unknown) => {
          assert.ok(error instanceof StatusError);
          assert.equal(error.code, Code.NOT_FOUND);
          return true;
        },
      );
    });

    it('expires a session not updated within sessionTimeoutMs and requeues its work', async () => {
      const f = await farm({ sessionTimeoutMs: 100 });
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage());
      assert.equal(session.leases.length, 1);
      const deadlineMs = Date.now() + 1_500;
      while ((await f.scheduler.get(ctx, op.name))?.stage !== 'QUEUED') {
        assert.ok(Date.now() < deadlineMs, 'the session expired in time');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await assert.rejects(
        f.sessions.update(ctx, session.name, botMessage(session.leases), deadline()),
        (error: unknown) => {
          assert.ok(error instanceof StatusError);
          assert.equal(error.code, Code.NOT_FOUND);
          return true;
        },
      );
      const replacement = await f.sessions.create(ctx, '', botMessage());
      assert.deepEqual(
        replacement.leases.map((l) => l.id),
        [op.name],
      );
    });

    it('ends the session of a terminating bot once it holds nothing, re-queuing what it stopped listing', async () => {
      const f = await farm({ longPollMs: 5_000 });
      const finished = await f.scheduler.submit(ctx, actionRequest(1));
      const handedBack = await f.scheduler.submit(ctx, actionRequest(2));
      const session = await f.sessions.create(ctx, '', botMessage([], { OSFamily: 'linux', slots: '2' }));
      const [first, second] = session.leases as [Lease, Lease];
      assert.deepEqual([first.id, second.id].sort(), [finished.name, handedBack.name].sort());
      const done = first.id === finished.name ? first : second;
      const response = ExecuteResponse.fromPartial({ result: { exitCode: 0 }, status: { code: Code.OK } });
      const startedMs = Date.now();
      const last = await f.sessions.update(
        ctx,
        session.name,
        botMessage(
          [withState(done, LeaseState.COMPLETED, { result: executeResponseAny(response) })],
          { OSFamily: 'linux', slots: '2' },
          BotStatus.BOT_TERMINATING,
        ),
        deadline(),
      );
      assert.ok(Date.now() - startedMs < 4_000, 'a terminating bot is never long-polled');
      assert.deepEqual(last.leases, []);
      assert.equal((await f.scheduler.get(ctx, finished.name))?.stage, 'COMPLETED');
      const requeued = await f.scheduler.get(ctx, handedBack.name);
      assert.equal(requeued?.stage, 'QUEUED');
      assert.equal(requeued?.attempts, 0, 'handing back is not a failed attempt');
      await assert.rejects(f.sessions.update(ctx, session.name, botMessage(), deadline()), (error: unknown) => {
        assert.ok(error instanceof StatusError);
        assert.equal(error.code, Code.NOT_FOUND);
        return true;
      });
    });

    it('keeps the session of a terminating bot that still runs a lease, giving it nothing new', async () => {
      const f = await farm();
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage());
      const [lease] = session.leases as [Lease];
      await f.scheduler.submit(ctx, actionRequest(2));
      const draining = await f.sessions.update(
        ctx,
        session.name,
        botMessage([withState(lease, LeaseState.ACTIVE)], undefined, BotStatus.BOT_TERMINATING),
        deadline(),
      );
      assert.deepEqual(
        draining.leases.map((l) => l.id),
        [op.name],
      );
      const again = await f.sessions.update(
        ctx,
        session.name,
        botMessage([withState(lease, LeaseState.ACTIVE)], undefined, BotStatus.BOT_TERMINATING),
        deadline(),
      );
      assert.deepEqual(
        again.leases.map((l) => l.id),
        [op.name],
      );
      assert.equal((await f.scheduler.get(ctx, op.name))?.stage, 'EXECUTING');
    });

    it('forgets a bot at once when its long poll is cut off and it does not call again', async () => {
      const events: string[] = [];
      const f = await farm({
        longPollMs: 5_000,
        disconnectGraceMs: 20,
        events: {
          joined: (session) => events.push(`joined ${session.botId}`),
          left: (session, reason, held) => events.push(`left ${session.botId} ${reason} ${held}`),
        },
      });
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage([], { OSFamily: 'linux', slots: '2' }));
      assert.equal(session.leases.length, 1);
      const [lease] = session.leases as [Lease];
      // The bot's long poll, cut off as when its process dies.
      const call = new AbortController();
      const polling = f.sessions.update(
        { ...ctx, signal: call.signal },
        session.name,
        botMessage([withState(lease, LeaseState.ACTIVE)], { OSFamily: 'linux', slots: '2' }),
        deadline(),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      call.abort();
      await polling.catch(() => undefined);
      await waitUntil(async () => (await f.scheduler.get(ctx, op.name))?.stage === 'QUEUED');
      assert.deepEqual(events, ['joined bot-1', 'left bot-1 disconnected 1']);
      await assert.rejects(f.sessions.update(ctx, session.name, botMessage(), deadline()), /not found/);
    });

    it('keeps a bot that cut its own long poll short to report and called again at once', async () => {
      const f = await farm({ longPollMs: 5_000, disconnectGraceMs: 50 });
      const session = await f.sessions.create(ctx, '', botMessage());
      const call = new AbortController();
      const polling = f.sessions.update({ ...ctx, signal: call.signal }, session.name, botMessage(), deadline());
      await new Promise((resolve) => setTimeout(resolve, 10));
      call.abort();
      await polling.catch(() => undefined);
      await f.sessions.update(ctx, session.name, botMessage(), Date.now() + 1_200);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(
        f.sessions.list().map((s) => s.name),
        [session.name],
      );
    });

    it('ends the sessions of a bot whose process the server saw exit, requeueing its work at once', async () => {
      const left: string[] = [];
      const f = await farm({ events: { joined: () => {}, left: (s, reason) => left.push(`${s.botId} ${reason}`) } });
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      await f.sessions.create(ctx, '', botMessage([], { OSFamily: 'linux' }, BotStatus.OK, 'embedded'));
      assert.equal((await f.scheduler.get(ctx, op.name))?.stage, 'EXECUTING');
      assert.equal(await f.sessions.forgetBot('embedded'), 1);
      assert.equal((await f.scheduler.get(ctx, op.name))?.stage, 'QUEUED');
      assert.deepEqual(left, ['embedded process-exited']);
      assert.equal(await f.sessions.forgetBot('embedded'), 0);
    });

    it('keeps a session alive while the bot keeps updating it', async () => {
      const f = await farm({ sessionTimeoutMs: 100, longPollMs: 10 });
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage());
      const [lease] = session.leases as [Lease];
      const until = Date.now() + 300;
      while (Date.now() < until) {
        await f.sessions.update(ctx, session.name, botMessage([withState(lease, LeaseState.ACTIVE)]), deadline());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal((await f.scheduler.get(ctx, op.name))?.stage, 'EXECUTING');
    });
  });

  describe('long polling', () => {
    it('holds an update with free slots and nothing to report until work is submitted', async () => {
      const f = await farm({ longPollMs: 5_000 });
      const session = await f.sessions.create(ctx, '', botMessage());
      const started = Date.now();
      const update = f.sessions.update(ctx, session.name, botMessage(), deadline());
      let answered = false;
      void update.then(() => {
        answered = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(answered, false, 'the update waits for work');
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const result = await update;
      assert.ok(Date.now() - started < 1_000, `answered after ${Date.now() - started} ms`);
      assert.deepEqual(
        result.leases.map((l) => l.id),
        [op.name],
      );
    });

    it('answers an empty update after the long poll when no work arrives', async () => {
      const f = await farm({ longPollMs: 40 });
      const session = await f.sessions.create(ctx, '', botMessage());
      const started = Date.now();
      const result = await f.sessions.update(ctx, session.name, botMessage(), deadline());
      assert.deepEqual(result.leases, []);
      assert.ok(Date.now() - started >= 30);
    });

    it('does not hold an update that reports a result, nor one whose slots are all busy', async () => {
      const f = await farm({ longPollMs: 5_000 });
      await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage());
      const [lease] = session.leases as [Lease];
      let started = Date.now();
      await f.sessions.update(ctx, session.name, botMessage([withState(lease, LeaseState.ACTIVE)]), deadline());
      assert.ok(Date.now() - started < 1_000, 'busy bot answered at once');
      started = Date.now();
      const response = ExecuteResponse.fromPartial({ result: { exitCode: 0 } });
      await f.sessions.update(
        ctx,
        session.name,
        botMessage([withState(lease, LeaseState.COMPLETED, { result: executeResponseAny(response) })]),
        deadline(),
      );
      assert.ok(Date.now() - started < 1_000, 'reporting bot answered at once');
    });

    it('does not wait past the call’s deadline', async () => {
      const f = await farm({ longPollMs: 5_000 });
      const session = await f.sessions.create(ctx, '', botMessage());
      const started = Date.now();
      await f.sessions.update(ctx, session.name, botMessage(), Date.now() + 1_100);
      assert.ok(Date.now() - started < 1_000);
    });

    it('takes no work for a long poll the bot abandoned, since the answer would be lost', async () => {
      const f = await farm({ longPollMs: 5_000 });
      const session = await f.sessions.create(ctx, '', botMessage());
      const abort = new AbortController();
      const update = f.sessions.update({ ...ctx, signal: abort.signal }, session.name, botMessage(), deadline());
      await new Promise((resolve) => setTimeout(resolve, 20));
      const submitting = f.scheduler.submit(ctx, actionRequest(1));
      abort.abort();
      const op = await submitting;
      await update;
      assert.equal((await f.scheduler.get(ctx, op.name))?.stage, 'QUEUED');
    });

    it('tells a long-polling bot promptly that its running operation was cancelled', async () => {
      const f = await farm({ longPollMs: 5_000 });
      const op = await f.scheduler.submit(ctx, actionRequest(1));
      const session = await f.sessions.create(ctx, '', botMessage([], { slots: '2' }));
      const [lease] = session.leases as [Lease];
      const started = Date.now();
      const update = f.sessions.update(
        ctx,
        session.name,
        botMessage([withState(lease, LeaseState.ACTIVE)], { slots: '2' }),
        deadline(),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      await f.scheduler.cancel(ctx, op.name);
      const result = await update;
      assert.ok(Date.now() - started < 1_000, `told after ${Date.now() - started} ms`);
      assert.deepEqual(
        result.leases.map((l) => l.state),
        [LeaseState.CANCELLED],
      );
    });
  });
});
