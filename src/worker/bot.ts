/**
 * A Remote Workers API bot: creates a bot session, then calls UpdateBotSession in
 * a loop, accepting PENDING leases (an Action digest each), running them with the
 * given executor up to `slots` at a time, and reporting each result as an
 * ExecuteResponse. The same loop serves `granary worker` and the workers that
 * `granary serve` starts, so the embedded farm exercises the real protocol.
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
import { type DialOptions, dial } from '../grpc/dial.js';
import { Code } from '../util/status.js';
import { msFromTimestamp } from '../util/time.js';

const EXECUTE_RESPONSE_TYPE = 'type.googleapis.com/build.bazel.remote.execution.v2.ExecuteResponse';

/**
 * What a lease asks to run: the Action itself (with the timeout the server
 * decided), or, from servers that send only its digest, the Action's digest.
 */
export type LeaseWork = { action: Action; actionDigest?: undefined } | { actionDigest: Digest; action?: undefined };

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
}

export class Bot {
  private readonly client: InstanceType<typeof BotsClient>;
  private readonly running = new Map<string, RunningLease>();
  private stopped = false;
  private wake: (() => void) | undefined;
  private pendingUpdate: { cancel(): void } | undefined;
  private cancelledByUs = false;
  private readonly log: (message: string) => void;

  constructor(private readonly options: BotOptions) {
    this.client = dial(options.server, options.dial).client(BotsClient);
    this.log = options.log ?? ((m) => console.error(m));
  }

  /** Runs until stop() is called; reconnects after errors with a short backoff. */
  async run(): Promise<void> {
    let backoffMs = 200;
    while (!this.stopped) {
      try {
        let session = await this.call('createBotSession', {
          parent: this.options.instanceName ?? '',
          botSession: this.sessionMessage(''),
        });
        this.log(`granary worker: connected as ${session.name} (${this.options.slots} slots)`);
        backoffMs = 200;
        while (!this.stopped) {
          this.acceptNew(session);
          const active = [...this.running.values()];
          const finished = active.some((r) => r.done);
          // With every slot busy the server answers at once, so wait here for a change
          // (at most a heartbeat interval); otherwise the server long-polls for work.
          if (!finished && active.length >= this.options.slots) await this.waitForChange(heartbeatMs(session));
          try {
            session = await this.update(session.name);
          } catch (error) {
            if (this.cancelledByUs && ((error as ServiceError).code as number) === Code.CANCELLED) continue;
            throw error;
          }
          this.forgetReported(session);
        }
      } catch (error) {
        if (this.stopped) break;
        const status = error as ServiceError;
        this.log(`granary worker: ${status.details ?? status.message}; reconnecting`);
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    }
  }

  stop(): void {
    this.stopped = true;
    for (const r of this.running.values()) r.abort.abort();
    this.wake?.();
    this.pendingUpdate?.cancel();
    this.client.close();
  }

  private acceptNew(session: BotSession): void {
    for (const lease of session.leases) {
      const known = this.running.get(lease.id);
      if (lease.state === LeaseState.CANCELLED) {
        known?.abort.abort();
        this.running.delete(lease.id);
        continue;
      }
      if (known || lease.state !== LeaseState.PENDING) continue;
      const entry: RunningLease = {
        lease: { ...lease, state: LeaseState.ACTIVE },
        abort: new AbortController(),
        done: false,
      };
      this.running.set(lease.id, entry);
      void this.execute(entry);
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
    entry.lease = {
      ...entry.lease,
      state: LeaseState.COMPLETED,
      result: { typeUrl: EXECUTE_RESPONSE_TYPE, value: Buffer.from(ExecuteResponse.encode(response).finish()) },
      status: response.status ?? { code: 0, message: '', details: [] },
    };
    entry.done = true;
    this.wake?.();
    // Interrupt a long poll so the result is reported at once.
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
      status: BotStatus.OK,
      worker: { devices: [], properties, configs: [] },
      leases: [...this.running.values()].map((r) => r.lease),
      expireTime: undefined,
      version: '',
    };
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

  private update(name: string): Promise<BotSession> {
    this.cancelledByUs = false;
    return new Promise((resolve, reject) => {
      const call = this.client.updateBotSession(
        { name, botSession: this.sessionMessage(name), updateMask: undefined },
        new Metadata(),
        { deadline: new Date(Date.now() + 30_000) },
        (error, session) => {
          this.pendingUpdate = undefined;
          if (error) reject(error);
          else resolve(session);
        },
      );
      this.pendingUpdate = call;
    });
  }

  private call(method: 'createBotSession', request: object): Promise<BotSession> {
    return new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + 30_000);
      (
        this.client[method] as (
          r: object,
          m: Metadata,
          o: object,
          cb: (e: ServiceError | null, s: BotSession) => void,
        ) => void
      )(request, new Metadata(), { deadline }, (error, session) => (error ? reject(error) : resolve(session)));
    });
  }
}

/** What a lease's payload asks to run. */
function leaseWork(lease: Lease): LeaseWork {
  const payload = lease.payload;
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How long a busy bot may wait before it must report again: a third of its session's lifetime. */
function heartbeatMs(session: BotSession): number {
  const expire = session.expireTime;
  if (!expire) return 5000;
  const remaining = msFromTimestamp(expire) - Date.now();
  return Math.max(200, Math.min(5000, remaining / 3));
}
