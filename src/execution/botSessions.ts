/**
 * The server side of the Remote Workers API (google.devtools.remoteworkers.v1test2
 * Bots): bot sessions, and leases that carry an Action digest. Bots pull work by
 * calling UpdateBotSession; when a bot has free capacity and nothing to report,
 * the call waits briefly for work (long poll). A session not updated within the
 * timeout expires and its actions return to the queue.
 *
 * Capacity: a bot may advertise the property `slots=N` (Granary's workers do);
 * otherwise it gets one lease at a time, as BuildBox workers expect.
 *
 * Payload: a lease carries the Action's digest, or, for a bot advertising
 * `lease-payload=action` (Granary's workers do), the Action itself with its
 * `timeout` set to the one the server decided (the Action's own, or the server's
 * default), so one timeout rules wherever the action runs, plus the small blobs
 * the action needs (see leaseBlobs.ts) so that the worker need not fetch them.
 *
 * A bot that is not OK (for example BOT_TERMINATING while it shuts down) gets no
 * new lease and is never long-polled; leases it stops listing go back to the queue
 * at once; and a terminating bot that holds nothing more ends its session then and
 * there, instead of when the session would have expired.
 *
 * A vanished bot is forgotten at once rather than when its session expires: when
 * its long poll is cut off (its process died or its connection broke) and it does
 * not call again within a short grace, its session ends and its leases go back to
 * the queue. The server that started a bot's process may also end its sessions
 * itself (forgetBot) the moment the process exits.
 */
import { randomUUID } from 'node:crypto';
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import {
  type Action,
  ActionResult,
  Digest,
  ExecuteResponse,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import {
  type BotSession,
  BotStatus,
  type Lease,
  LeaseState,
} from '../gen/google/devtools/remoteworkers/v1test2/bots.js';
import type { Worker } from '../gen/google/devtools/remoteworkers/v1test2/worker.js';
import type { Any } from '../gen/google/protobuf/any.js';
import { ActionAssignment, type InlineBlob } from '../gen/granary/worker/v1/lease.js';
import { Code, invalidArgument, notFound } from '../util/status.js';
import { durationFromMs, timestampFromMs } from '../util/time.js';
import type { WorkerQueue } from './scheduler.js';
import { type ActionRequest, LEASE_PAYLOAD_PROPERTY, type PlatformProperty } from './types.js';

const TYPE_PREFIX = 'type.googleapis.com/';
const DIGEST_TYPE = `${TYPE_PREFIX}build.bazel.remote.execution.v2.Digest`;
const ASSIGNMENT_TYPE = `${TYPE_PREFIX}granary.worker.v1.ActionAssignment`;
export const SLOTS_PROPERTY = 'slots';

interface SessionState {
  name: string;
  botId: string;
  properties: PlatformProperty[];
  slots: number;
  /** Whether its leases may carry the Action itself (it advertised `lease-payload=action`). */
  acceptsActions: boolean;
  /** The bot's description of itself, echoed in every response. */
  worker: Worker | undefined;
  /** Leases handed to the bot and not yet finished, by lease id (= operation name). */
  leases: Map<string, Lease>;
  lastUpdateMs: number;
  /** Update calls received so far: a call cut off is followed by another unless the bot is gone. */
  calls: number;
  /** The connection it last called from, for the logs. */
  peer: string | undefined;
}

/** A bot session as the server's logs and metrics describe it. */
export interface BotSessionInfo {
  readonly name: string;
  readonly botId: string;
  readonly slots: number;
  readonly properties: readonly PlatformProperty[];
  readonly peer: string | undefined;
}

/**
 * Why a session ended: the bot stopped calling (`expired`), its call was cut off
 * and it did not call again (`disconnected`), it started a new session
 * (`replaced`), it said it was shutting down (`terminated`), or the server saw its
 * process end (`process-exited`).
 */
export type BotLeaveReason = 'expired' | 'disconnected' | 'replaced' | 'terminated' | 'process-exited';

/** Told when bots come and go, for logs and metrics; called synchronously, must not throw. */
export interface BotSessionEvents {
  joined(session: BotSessionInfo): void;
  /** `leasesReturned`: actions it held that went back to the queue. */
  left(session: BotSessionInfo, reason: BotLeaveReason, leasesReturned: number): void;
}

export interface BotSessionsOptions {
  longPollMs?: number;
  sessionTimeoutMs?: number;
  now?: () => number;
  /**
   * Reads an action's Action message, for the leases of bots that take the
   * Action itself; such a lease carries the digest when it gives nothing.
   */
  actionOf?: (context: RequestContext, request: ActionRequest) => Promise<Action | undefined>;
  /** How long a bot whose call was cut off has to call again before it is forgotten; default 2 s. */
  disconnectGraceMs?: number;
  events?: BotSessionEvents;
  /**
   * Small blobs the action needs (Command, input Directories, small inputs) to send
   * along with a lease carrying the Action, saving the worker a round trip each.
   */
  blobsOf?: (context: RequestContext, action: Action) => Promise<InlineBlob[]>;
}

export class BotSessions {
  private readonly sessions = new Map<string, SessionState>();
  private readonly disconnectTimers = new Set<NodeJS.Timeout>();
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly queue: WorkerQueue,
    private readonly options: BotSessionsOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    // Sweep often enough that a short session timeout is enforced close to on time.
    this.sweeper = setInterval(
      () => void this.expireSessions(),
      Math.min(1000, Math.max(10, this.sessionTimeoutMs / 2)),
    );
    this.sweeper.unref();
  }

  get sessionTimeoutMs(): number {
    return this.options.sessionTimeoutMs ?? 30_000;
  }

  async create(context: RequestContext, parent: string, session: BotSession | undefined): Promise<BotSession> {
    if (!session || session.botId === '') throw invalidArgument('bot_session.bot_id is required');
    const name = `${parent ? `${parent}/` : ''}botSessions/${randomUUID()}`;
    const state: SessionState = {
      name,
      botId: session.botId,
      ...propertiesOf(session),
      worker: session.worker,
      leases: new Map(),
      lastUpdateMs: this.now(),
      calls: 0,
      peer: context.peer,
    };
    // A bot that creates a new session has given up its old ones: their work goes back
    // to the queue at once instead of when they would expire.
    for (const [oldName, old] of this.sessions) {
      if (old.botId !== session.botId) continue;
      this.sessions.delete(oldName);
      for (const id of old.leases.keys()) await this.queue.release(context, oldName, id);
      await this.queue.removeWorker(context, oldName);
      this.tell((events) => events.left(infoOf(old), 'replaced', old.leases.size));
    }
    this.sessions.set(name, state);
    await this.heartbeat(context, state);
    this.tell((events) => events.joined(infoOf(state)));
    return this.respond(context, state, session.status, false);
  }

  /**
   * A bot's report and request for work. The call waits for work (long poll) until
   * shortly before `deadlineMs` at most, and returns early when the context aborts.
   */
  async update(
    context: RequestContext,
    name: string,
    session: BotSession | undefined,
    deadlineMs: number,
  ): Promise<BotSession> {
    const state = this.sessions.get(name);
    if (!state) throw notFound(`bot session ${name} not found (expired?); create a new one`);
    if (!session) throw invalidArgument('bot_session is required');
    state.lastUpdateMs = this.now();
    state.calls++;
    state.peer = context.peer ?? state.peer;
    this.watchForDisconnect(context, name, state);
    // buildbox-worker builds each update from the session of the previous response, adding
    // only worker.configs: the response echoes the worker, and an update whose worker has
    // no properties keeps the known ones (else the bot would match no action after its
    // first update).
    const updated = propertiesOf(session);
    if (updated.properties.length > 0 || updated.slots !== 1 || state.properties.length === 0) {
      Object.assign(state, updated, { worker: session.worker });
    }
    await this.heartbeat(context, state);
    let reported = false;
    const seen = new Set<string>();
    for (const lease of session.leases) {
      seen.add(lease.id);
      const known = state.leases.get(lease.id);
      if (!known) continue;
      if (known.state === LeaseState.CANCELLED) {
        // We told the bot to stop; once it acknowledges (or finishes anyway) it is done with the lease.
        if (lease.state === LeaseState.COMPLETED || lease.state === LeaseState.CANCELLED) state.leases.delete(lease.id);
      } else if (lease.state === LeaseState.COMPLETED) {
        state.leases.delete(lease.id);
        reported = true;
        await this.queue.complete(context, name, lease.id, await this.responseOf(context, name, lease));
      } else if (lease.state === LeaseState.CANCELLED) {
        // The bot gave the lease up on its own: the action has to run elsewhere.
        state.leases.delete(lease.id);
        reported = true;
        await this.queue.release(context, name, lease.id);
      } else if (lease.state === LeaseState.ACTIVE) {
        known.state = LeaseState.ACTIVE;
      }
    }
    // Leases the bot no longer mentions were lost by it: give them back.
    for (const [id, lease] of [...state.leases]) {
      if (!seen.has(id)) {
        state.leases.delete(id);
        if (lease.state !== LeaseState.CANCELLED) await this.queue.release(context, name, id);
      }
    }
    if (session.status === BotStatus.BOT_TERMINATING && state.leases.size === 0) {
      // The specification: once its leases are done the bot no longer updates this session.
      await this.end(name, state, 'terminated');
    }
    return this.respond(context, state, session.status, !reported, deadlineMs);
  }

  /**
   * Ends every session of the bot named `botId` now, its leases going back to the
   * queue: for a server that saw the bot's process end. Returns how many it ended.
   */
  async forgetBot(botId: string, reason: BotLeaveReason = 'process-exited'): Promise<number> {
    let ended = 0;
    for (const [name, state] of [...this.sessions]) {
      if (state.botId !== botId) continue;
      await this.end(name, state, reason);
      ended++;
    }
    return ended;
  }

  /** The live sessions, for the admin view. */
  list(): BotSessionInfo[] {
    return [...this.sessions.values()].map(infoOf);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const timer of this.disconnectTimers) clearTimeout(timer);
    this.disconnectTimers.clear();
  }

  /**
   * When the call is cut off (client cancelled, connection lost), the bot has a
   * grace period to call again; a bot that was only interrupting its own long poll
   * to report a result calls again within milliseconds.
   */
  private watchForDisconnect(context: RequestContext, name: string, state: SessionState): void {
    if (context.signal.aborted) return;
    const callsAtStart = state.calls;
    const onAbort = () => {
      const timer = setTimeout(() => {
        this.disconnectTimers.delete(timer);
        if (this.sessions.get(name) === state && state.calls === callsAtStart) {
          void this.end(name, state, 'disconnected').catch(() => undefined);
        }
      }, this.options.disconnectGraceMs ?? 2000);
      timer.unref();
      this.disconnectTimers.add(timer);
    };
    // The edge aborts a call's signal only while its handler runs, so a call that ends normally never fires this.
    context.signal.addEventListener('abort', onAbort, { once: true });
  }

  /** Ends a session: its leases go back to the queue and the worker is marked gone. */
  private async end(name: string, state: SessionState, reason: BotLeaveReason): Promise<void> {
    if (this.sessions.get(name) !== state) return;
    this.sessions.delete(name);
    const held = state.leases.size;
    await this.queue.removeWorker(backgroundContext(), name);
    this.tell((events) => events.left(infoOf(state), reason, held));
  }

  private tell(call: (events: BotSessionEvents) => void): void {
    if (!this.options.events) return;
    try {
      call(this.options.events);
    } catch {
      // An observer's failure must not change the session.
    }
  }

  private heartbeat(context: RequestContext, state: SessionState): Promise<void> {
    return this.queue.heartbeat(context, state.name, state.properties, { botId: state.botId, slots: state.slots });
  }

  private async respond(
    context: RequestContext,
    state: SessionState,
    status: BotStatus,
    mayWait: boolean,
    deadlineMs = 0,
  ): Promise<BotSession> {
    const healthy = status === BotStatus.OK || status === BotStatus.BOT_STATUS_UNSPECIFIED;
    if (healthy) {
      let assigned = await this.assign(context, state);
      const waitMs = Math.min(
        this.options.longPollMs ?? 5000,
        this.sessionTimeoutMs / 3,
        deadlineMs - this.now() - 1000,
      );
      if (assigned === 0 && mayWait && waitMs > 0 && state.leases.size < state.slots) {
        await this.queue.waitForWork(context, waitMs);
        // A cancelled call would lose whatever it assigned: the bot is about to call again.
        if (!context.signal.aborted) assigned = await this.assign(context, state);
      }
    }
    state.lastUpdateMs = this.now();
    const leases: Lease[] = [];
    for (const [id, lease] of state.leases) {
      if (lease.state !== LeaseState.CANCELLED && (await this.queue.shouldAbandon(context, state.name, id))) {
        // Tell the bot to stop. The lease is forgotten only once the bot acknowledges (or stops
        // mentioning it): this response may never reach the bot, and it must then be told again.
        lease.state = LeaseState.CANCELLED;
      }
      leases.push({ ...lease });
    }
    return {
      name: state.name,
      botId: state.botId,
      status,
      worker: state.worker,
      leases,
      expireTime: timestampFromMs(state.lastUpdateMs + this.sessionTimeoutMs),
      version: '',
    };
  }

  private async assign(context: RequestContext, state: SessionState): Promise<number> {
    const free = state.slots - state.leases.size;
    if (free <= 0) return 0;
    const assignments = await this.queue.take(context, state.name, free);
    const payloads = await Promise.all(assignments.map((a) => this.payloadFor(context, state, a.request)));
    for (const [index, assignment] of assignments.entries()) {
      state.leases.set(assignment.operationName, {
        id: assignment.operationName,
        payload: payloads[index],
        result: undefined,
        state: LeaseState.PENDING,
        status: undefined,
        requirements: undefined,
        expireTime: undefined,
        assignment: '',
        inlineAssignment: undefined,
      });
    }
    return assignments.length;
  }

  /**
   * For a bot that takes it, the Action with the decided timeout plus the client's
   * digest (when the Action can be read); else the Action's digest alone.
   */
  private async payloadFor(context: RequestContext, state: SessionState, request: ActionRequest): Promise<Any> {
    if (state.acceptsActions && this.options.actionOf) {
      const action = await this.options.actionOf(context, request).catch(() => undefined);
      if (action) {
        const timed: Action = { ...action, timeout: durationFromMs(request.timeoutMs) };
        // Without them the worker reads the blobs itself, as before.
        const blobs = (await this.options.blobsOf?.(context, action).catch(() => undefined)) ?? [];
        const assignment = ActionAssignment.encode({
          actionDigest: request.actionDigest,
          action: timed,
          blobs,
        }).finish();
        return { typeUrl: ASSIGNMENT_TYPE, value: Buffer.from(assignment) };
      }
    }
    return { typeUrl: DIGEST_TYPE, value: Buffer.from(Digest.encode(request.actionDigest).finish()) };
  }

  /** Accepts results as an ExecuteResponse (Granary workers) or an ActionResult (BuildBox). */
  private async responseOf(context: RequestContext, sessionName: string, lease: Lease): Promise<ExecuteResponse> {
    const status = lease.status ?? { code: Code.OK, message: '', details: [] };
    let response: ExecuteResponse = { result: undefined, cachedResult: false, status, serverLogs: {}, message: '' };
    const result: Any | undefined = lease.result;
    try {
      if (result?.typeUrl.endsWith('.ExecuteResponse')) {
        response = ExecuteResponse.decode(result.value);
        if (status.code !== Code.OK && (response.status?.code ?? 0) === Code.OK) response.status = status;
      } else if (result?.typeUrl.endsWith('.ActionResult')) {
        response.result = ActionResult.decode(result.value);
      }
    } catch {
      response.status = { code: Code.INTERNAL, message: 'the worker sent an undecodable lease result', details: [] };
    }
    if (!response.result && (response.status?.code ?? 0) === Code.OK) {
      response.status = {
        code: Code.INTERNAL,
        message: 'the worker completed the lease without a result',
        details: [],
      };
    }
    const record = await this.queue.leaseOf(context, sessionName, lease.id);
    if (record && response.result?.executionMetadata) {
      response.result.executionMetadata.queuedTimestamp = timestampFromMs(record.queuedAtMs);
    }
    return response;
  }

  private async expireSessions(): Promise<void> {
    const cutoff = this.now() - this.sessionTimeoutMs;
    for (const [name, state] of [...this.sessions]) {
      if (state.lastUpdateMs < cutoff) await this.end(name, state, 'expired');
    }
  }
}

function infoOf(state: SessionState): BotSessionInfo {
  return {
    name: state.name,
    botId: state.botId,
    slots: state.slots,
    properties: state.properties,
    peer: state.peer,
  };
}

function propertiesOf(session: BotSession): { properties: PlatformProperty[]; slots: number; acceptsActions: boolean } {
  const properties: PlatformProperty[] = [];
  let slots = 1;
  let acceptsActions = false;
  const add = (key: string, value: string) => {
    if (key === SLOTS_PROPERTY) {
      const n = Number(value);
      if (Number.isSafeInteger(n) && n > 0) slots = n;
      return;
    }
    if (key === LEASE_PAYLOAD_PROPERTY) {
      acceptsActions ||= value === 'action';
      return;
    }
    properties.push({ name: key, value });
  };
  for (const p of session.worker?.properties ?? []) add(p.key, p.value);
  for (const device of session.worker?.devices ?? []) for (const p of device.properties) add(p.key, p.value);
  return { properties, slots, acceptsActions };
}
