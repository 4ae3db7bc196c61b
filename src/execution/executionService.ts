/**
 * The Execution service's logic: validates an Execute request against the CAS,
 * answers from the action cache when it can, and otherwise queues the action.
 * It decides the action's timeout, the one the worker will enforce.
 */
import type { ActionCache } from '../actioncache/actionCache.js';
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, parseDigest, resolveDigestFunction } from '../digest/digest.js';
import {
  Action,
  Command,
  type ExecuteRequest,
  type ExecuteResponse,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, getBuffer } from '../storage/blobStore.js';
import { Code, failedPrecondition, invalidArgument } from '../util/status.js';
import { msFromDuration } from '../util/time.js';
import type { RecentBlobs } from './recentBlobs.js';
import { bubblewrapHint } from './sandboxProperties.js';
import type { ClientQueue } from './scheduler.js';
import { fairnessKeyOf } from './schedulingPolicy.js';
import type { ActionRequest, OperationRecord, PlatformProperty } from './types.js';

export interface ExecutionOptions {
  /** Timeout for actions that do not set one (carried to the worker in the lease). */
  defaultTimeoutMs: number;
  /** Longest timeout an action may ask for. */
  maximumTimeoutMs: number;
}

export const DEFAULT_EXECUTION_OPTIONS: ExecutionOptions = {
  defaultTimeoutMs: 15 * 60_000,
  maximumTimeoutMs: 3 * 60 * 60_000,
};

export class ExecutionService {
  constructor(
    private readonly cas: BlobStore,
    private readonly actionCache: ActionCache,
    private readonly queue: ClientQueue,
    private readonly options: ExecutionOptions = DEFAULT_EXECUTION_OPTIONS,
    /** Where the Action and Command read here are kept for the lease that sends them to a worker. */
    private readonly recent?: RecentBlobs,
  ) {}

  async execute(context: RequestContext, request: ExecuteRequest): Promise<OperationRecord> {
    const fn = resolveDigestFunction(request.digestFunction, request.actionDigest?.hash);
    const actionDigest = parseDigest(request.actionDigest, fn, 'action_digest');
    const action = await this.loadMessage(context, actionDigest, Action.decode, 'Action');
    const commandDigest = parseDigest(action.commandDigest, fn, 'action.command_digest');
    const inputRootDigest = parseDigest(action.inputRootDigest, fn, 'action.input_root_digest');
    const command = await this.loadMessage(context, commandDigest, Command.decode, 'Command');
    if (command.arguments.length === 0) throw invalidArgument('the Command has no arguments');
    if ((await this.cas.findMissing(context, [inputRootDigest])).length > 0) throw missing([inputRootDigest]);
    const timeoutMs = this.timeoutOf(action);
    const platform: PlatformProperty[] = (
      action.platform?.properties.length ? action.platform.properties : (command.platform?.properties ?? [])
    ).map((p) => ({ name: p.name, value: p.value }));
    const actionRequest: ActionRequest = {
      instanceName: request.instanceName,
      digestFunction: fn.value,
      actionDigest,
      platform,
      priority: request.executionPolicy?.priority ?? 0,
      clientKey: fairnessKeyOf(context),
      doNotCache: action.doNotCache,
      timeoutMs,
      clientMetadata: context.metadata,
    };
    if (!request.skipCacheLookup && !action.doNotCache) {
      const cached = await this.actionCache.get(
        context,
        { instanceName: request.instanceName, digestFunction: fn, actionDigest },
        {
          inlineStdout: request.inlineStdout,
          inlineStderr: request.inlineStderr,
          inlineOutputFiles: request.inlineOutputFiles,
        },
      );
      if (cached) {
        return this.queue.recordCompleted(context, actionRequest, {
          result: cached,
          cachedResult: true,
          status: { code: Code.OK, message: '', details: [] },
          serverLogs: {},
          message: '',
        });
      }
    }
    if (!(await this.queue.couldRun(context, platform))) {
      const wanted = platform.map((p) => `${p.name}=${p.value}`).join(', ') || '(none)';
      throw failedPrecondition(
        `no worker can run an action with platform properties ${wanted}${bubblewrapHint(platform)}`,
        [
          {
            type: 'PLATFORM',
            subject: wanted,
            description: 'no registered worker satisfies these platform properties',
          },
        ],
      );
    }
    return this.queue.submit(context, actionRequest);
  }

  private timeoutOf(action: Action): number {
    const requested = action.timeout ? Math.floor(msFromDuration(action.timeout)) : 0;
    if (requested < 0) throw invalidArgument('action.timeout must not be negative');
    if (requested > this.options.maximumTimeoutMs) {
      throw invalidArgument(
        `action.timeout of ${requested} ms exceeds this server's maximum of ${this.options.maximumTimeoutMs} ms`,
      );
    }
    return requested === 0 ? this.options.defaultTimeoutMs : requested;
  }

  private async loadMessage<T>(
    context: RequestContext,
    digest: Digest,
    decode: (data: Buffer) => T,
    what: string,
  ): Promise<T> {
    // Always from the CAS: Execute must see that the blob is (still) there.
    const data = await getBuffer(context, this.cas, digest);
    if (!data) throw missing([digest]);
    this.recent?.keep(digest, data);
    try {
      return decode(data);
    } catch {
      throw invalidArgument(`blob ${digest.hash}/${digest.sizeBytes} is not a valid ${what} message`);
    }
  }
}

function missing(digests: Digest[]) {
  return failedPrecondition(
    `missing from the CAS: ${digests.map((d) => `${d.hash}/${d.sizeBytes}`).join(', ')}`,
    digests.map((d) => ({ type: 'MISSING', subject: `blobs/${d.hash}/${d.sizeBytes}`, description: '' })),
  );
}

export type { ExecuteResponse };
