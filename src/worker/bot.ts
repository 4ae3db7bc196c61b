/**
 * A Remote Workers API bot: creates a bot session, then calls UpdateBotSession in
 * a loop, accepting PENDING leases (an Action digest each), running them with the
 * given executor up to `slots` at a time, and reporting each result as an
 * ExecuteResponse. The same loop serves `granary worker` and the workers that
 * `granary serve` starts, so the embedded farm exercises the real protocol.
 *
 * Shutting down (drain): the bot reports BOT_TERMINATING, so the server assigns it
 * nothing more and does not long-poll; it starts no new lease, lets running ones
 * finish and reports them for up to a grace period, then stops what is left and
 * hands it back by no longer listing it, which makes the server queue it again at
 * once. Its last update (BOT_TERMINATING, nothing held) ends the session.
 */
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { LEASE_PAYLOAD_PROPERTY, type PlatformProperty } from '../execution/types.js';
import { Action, Digest, ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import {
  type BotSession,
  BotStatus,
  BotsClient,
  type Lease,
  LeaseState,
} from '../gen/google/devtools/remoteworkers/v1test2/bots.js';
import { ActionAssignment, type InlineBlob } from '../gen/granary/worker/v1/lease.js';
import { type DialOptions, dial } from '../grpc/dial.js';
import { unreachableReason } from '../grpc/unreachable.js';
import { Backoff } from '../util/backoff.js';
import { Code } from '../util/status.js';
import { msFromTimestamp } from '../util/time.js';

const EXECUTE_RESPONSE_TYPE = 'type.googleapis.com/build.bazel.remote.execution.v2.ExecuteResponse';

/**
 * What a lease asks to run: the Action itself (with the timeout the server
 * decided), or, from servers that send only its digest, the Action's digest.
 */
/**
 * An Action to run (as the server sent it, timeout decided) and/or the client's
 * digest of it, and any blobs the lease carried along (unverified; see InlineBlobStore).
 */
export type LeaseWork = ({ action: Action; actionDigest?: Digest } | { actionDigest: Digest; action?: undefined }) & {
  blobs?: InlineBlob[];
};

export type LeaseExecutor = (work: LeaseWork, signal: AbortSignal) => Promise<ExecuteResponse>;

export interface BotOptions {
  /** Address of the Bots service (grpc://HOST:PORT, grpcs://..., see parseDialTarget). */
  server: string;
  /** TLS settings for a grpcs:// server. */
  dial?: DialOptions;
  botId: string;
  instanceName?: string;
  slots: number;
  platform: PlatformProperty[];
  execute: LeaseExecutor;
  log?: (message: string) => void;
}

interface RunningLease {
  lease: Lease;
  abort: AbortController;
  done: boolean;
  /** Stopped by a drain and given back to the server: its outcome is never reported. */
  handedBack: boolean;
}

/** Waits between attempts to reach the server: doubling from the first, with jitter, up to the longest. */
const FIRST_RETRY_MS = 500;
const LONGEST_RETRY_MS = 15_000;

/** How long a draining bot waits for the server to answer before it gives up telling it. */
const DRAIN_CALL_TIMEOUT_MS = 5000;
/** How long a drain waits for handed-back executions to wind down (kill their processes, clean up). */
const DRAIN_STOP_WAIT_MS = 10_000;

export class Bot {
  private readonly client: InstanceType<typeof BotsClient>;
  private readonly running = new Map<string, RunningLease>();
  private stopped = false;
  private wake: (() => void) | undefined;
  private pendingUpdate: { cancel(): void } | undefined;
  private pendingCreate: { cancel(): void } | undefined;
  private cancelledByUs = false;
  private draining = false;
  /** Executions in progress, including stopped ones still winding down. */
  private readonly executions = new Set<Promise<void>>();
  private runPromise: Promise<void> | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private interruptSleep: (() => void) | undefined;
  private readonly log: (message: string) => void;

  constructor(private readonly options: BotOptions) {
    // grpc-js backs off reconnecting on its own, up to 2 minutes by default: never longer than this loop
    // does, so that a retry after the server came back connects.
    this.client = dial(options.server, {
      ...options.dial,
      channelOptions: {
        'grpc.max_reconnect_backoff_ms': LONGEST_RETRY_MS,
        ...options.dial?.channelOptions,
      },
    }).client(BotsClient);
    this.log = options.log ?? ((m) => console.error(m));
  }

  /**
   * Runs until stop() is called or a drain is over; reconnects after errors with an
   * exponential backoff with jitter, saying why and when it retries (a draining bot
   * does not: it gives up telling the server).
   */
  run(): Promise<void> {
    this.runPromise ??= this.loop();
    return this.runPromise;
  }

  private async loop(): Promise<void> {
    const backoff = new Backoff({ firstMs: FIRST_RETRY_MS, maximumMs: LONGEST_RETRY_MS });
    while (!this.stopped) {
      // Drained before (re)connecting, with nothing to report: there is no session to end.
      if (this.draining && this.running.size === 0) return;
      try {
        let session = await this.createSession();
        this.log(`granary worker: connected as ${session.name} (${plural(this.options.slots, 'slot')})`);
        backoff.reset();
        while (!this.stopped) {
          this.acceptNew(session);
          const active = [...this.running.values()];
          const finished = active.some((r) => r.done);
          // With every slot busy the server answers at once, so wait here for a change
          // (at most a heartbeat interval); otherwise the server long-polls for work. A
          // draining bot is never long-polled, so it waits here while anything runs.
          const full = this.draining ? active.length > 0 : active.length >= this.options.slots;
          if (!finished && full) await this.waitForChange(heartbeatMs(session));
          const sent = this.sessionMessage(session.name);
          try {
            session = await this.update(sent);
          } catch (error) {
            if (this.cancelledByUs && ((error as ServiceError).code as number) === Code.CANCELLED) continue;
            throw error;
          }
          this.forgetReported(session);
          // The server has heard that this bot is terminating and holds nothing more: the session is over.
          if (this.draining && sent.status === BotStatus.BOT_TERMINATING && this.running.size === 0) {
            if (sent.leases.every((l) => l.state === LeaseState.COMPLETED)) return;
          }
        }
      } catch (error) {
        if (this.stopped) break;
        const status = error as ServiceError;
        if (this.draining) {
          // The server cannot be told; it re-queues whatever this bot held when the session expires.
          this.log(`granary worker: ${status.details ?? status.message}; stopping without telling the server`);
          this.handBackAll();
          return;
        }
        const delayMs = backoff.next();
        this.log(`granary worker: ${this.describeFailure(status)}; retrying in ${formatSeconds(delayMs)}`);
        await this.sleep(delayMs);
      }
    }
  }

  /**
   * Graceful shutdown, running alongside run(): no new leases, running ones have
   * `graceMs` to finish and be reported, the rest are stopped and handed back.
   * Resolves once run() returned and the stopped executions wound down (bounded).
   * Calling it again changes nothing; stop() stops at once.
   */
  drain(graceMs: number): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      this.drainTimer = setTimeout(() => this.handBackAll(), Math.max(0, graceMs));
      // Interrupt a long poll (or a reconnect backoff or attempt), so the server hears at once.
      this.interruptSleep?.();
      this.pendingCreate?.cancel();
      this.interruptPendingUpdate();
      this.wake?.();
    }
    return (this.runPromise ?? Promise.resolve()).finally(async () => {
      clearTimeout(this.drainTimer);
      this.handBackAll();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.executions]),
        new Promise((resolve) => {
          timer = setTimeout(resolve, DRAIN_STOP_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
      this.client.close();
    });
  }

  /** Stops at once: every running action is aborted and nothing more is reported. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.drainTimer);
    for (const r of this.running.values()) r.abort.abort();
    this.wake?.();
    this.interruptSleep?.();
    this.pendingCreate?.cancel();
    this.pendingUpdate?.cancel();
    this.client.close();
  }

  /** How many leases this bot is running (or holds unreported). */
  get leaseCount(): number {
    return this.running.size;
  }

  /** Stops every unfinished execution and forgets its lease, so the next update hands it back. */
  private handBackAll(): void {
    let count = 0;
    for (const [id, entry] of this.running) {
      if (entry.done) continue;
      entry.handedBack = true;
      entry.abort.abort();
      this.running.delete(id);
      count++;
    }
    if (count > 0) this.log(`granary worker: handing back ${count} unfinished action(s)`);
    this.wake?.();
  }

  private acceptNew(session: BotSession): void {
    for (const lease of session.leases) {
      const known = this.running.get(lease.id);
      if (lease.state === LeaseState.CANCELLED) {
        known?.abort.abort();
        this.running.delete(lease.id);
        continue;
      }
      // A draining bot leaves new leases unlisted: the server gives them to another bot.
      if (known || lease.state !== LeaseState.PENDING || this.draining) continue;
      const entry: RunningLease = {
        lease: { ...lease, state: LeaseState.ACTIVE },
        abort: new AbortController(),
        done: false,
        handedBack: false,
      };
      this.running.set(lease.id, entry);
      const execution = this.execute(entry);
      this.executions.add(execution);
      void execution.finally(() => this.executions.delete(execution));
    }
  }

  private async execute(entry: RunningLease): Promise<void> {
    let response: ExecuteResponse;
    try {
      const work = leaseWork(entry.lease);
      this.log(`granary worker: executing ${describeWork(entry.lease, work)}`);
      response = await this.options.execute(work, entry.abort.signal);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const code = (error as { code?: number }).code ?? Code.INTERNAL;
      response = {
        result: undefined,
        cachedResult: false,
        status: { code, message, details: [] },
        serverLogs: {},
        message,
      };
    }
    // Handed back: the server has (or will have) queued it again, whatever came of it here.
    if (entry.handedBack) return;
    entry.lease = {
      ...entry.lease,
      state: LeaseState.COMPLETED,
      result: { typeUrl: EXECUTE_RESPONSE_TYPE, value: Buffer.from(ExecuteResponse.encode(response).finish()) },
      status: response.status ?? { code: 0, message: '', details: [] },
    };
    entry.done = true;
    this.wake?.();
    // Interrupt a long poll so the result is reported at once.
    this.interruptPendingUpdate();
  }

  private interruptPendingUpdate(): void {
    if (this.pendingUpdate) {
      this.cancelledByUs = true;
      this.pendingUpdate.cancel();
    }
  }

  /** Completed leases were reported in the last update; the server has them now. */
  private forgetReported(session: BotSession): void {
    for (const [id, entry] of this.running) {
      if (
        entry.done &&
        entry.lease.state === LeaseState.COMPLETED &&
        !session.leases.some((l) => l.id === id && l.state === LeaseState.PENDING)
      ) {
        this.running.delete(id);
      }
    }
  }

  private sessionMessage(name: string): BotSession {
    const properties = [
      ...this.options.platform.map((p) => ({ key: p.name, value: p.value })),
      { key: 'slots', value: String(this.options.slots) },
      // Leases may carry the Action itself, with the timeout the server decided.
      { key: LEASE_PAYLOAD_PROPERTY, value: 'action' },
    ];
    return {
      name,
      botId: this.options.botId,
      status: this.draining ? BotStatus.BOT_TERMINATING : BotStatus.OK,
      worker: { devices: [], properties, configs: [] },
      leases: [...this.running.values()].map((r) => r.lease),
      expireTime: undefined,
      version: '',
    };
  }

  /** A failed call in plain words: "cannot reach server at X: connection refused", or the server's own error. */
  private describeFailure(error: ServiceError): string {
    const unreachable = unreachableReason(error);
    if (unreachable) return `cannot reach server at ${this.options.server}: ${unreachable}`;
    return `server at ${this.options.server}: ${error.details || error.message}`;
  }

  /** A reconnect backoff that stop() and drain() cut short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.interruptSleep = () => {
        this.interruptSleep = undefined;
        done();
      };
    });
  }

  private waitForChange(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, timeoutMs);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private update(session: BotSession): Promise<BotSession> {
    this.cancelledByUs = false;
    const timeoutMs = this.draining ? DRAIN_CALL_TIMEOUT_MS : 30_000;
    return new Promise((resolve, reject) => {
      const call = this.client.updateBotSession(
        { name: session.name, botSession: session, updateMask: undefined },
        new Metadata(),
        { deadline: new Date(Date.now() + timeoutMs) },
        (error, session) => {
          this.pendingUpdate = undefined;
          if (error) reject(error);
          else resolve(session);
        },
      );
      this.pendingUpdate = call;
    });
  }

  private createSession(): Promise<BotSession> {
    return new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + 30_000);
      const request = { parent: this.options.instanceName ?? '', botSession: this.sessionMessage('') };
      // Kept so that stop() and drain() can cut a hanging attempt short.
      this.pendingCreate = this.client.createBotSession(request, new Metadata(), { deadline }, (error, session) => {
        this.pendingCreate = undefined;
        if (error) reject(error);
        else resolve(session);
      });
    });
  }
}

/** What a lease's payload asks to run. */
function leaseWork(lease: Lease): LeaseWork {
  const payload = lease.payload;
  if (payload?.typeUrl.endsWith('.ActionAssignment')) {
    const assignment = ActionAssignment.decode(payload.value);
    if (assignment.action) {
      return { action: assignment.action, actionDigest: assignment.actionDigest, blobs: assignment.blobs };
    }
  }
  if (payload?.typeUrl.endsWith('.Action')) return { action: Action.decode(payload.value) };
  if (payload?.typeUrl.endsWith('.Digest')) return { actionDigest: Digest.decode(payload.value) };
  throw new Error(`unsupported lease payload ${payload?.typeUrl}`);
}

/** A lease for the log: the action digest when the lease names it, else the operation and the input root. */
function describeWork(lease: Lease, work: LeaseWork): string {
  if (work.actionDigest) return `${work.actionDigest.hash}/${work.actionDigest.sizeBytes}`;
  const root = work.action?.inputRootDigest;
  return `${lease.id}${root ? ` (input root ${root.hash}/${root.sizeBytes})` : ''}`;
}

/** "0.5 s", "12 s". */
function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** How long a busy bot may wait before it must report again: a third of its session's lifetime. */
function heartbeatMs(session: BotSession): number {
  const expire = session.expireTime;
  if (!expire) return 5000;
  const remaining = msFromTimestamp(expire) - Date.now();
  return Math.max(200, Math.min(5000, remaining / 3));
}
