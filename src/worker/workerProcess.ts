/**
 * Assembles a worker: the bot loop, a connection to the farm's CAS, the local
 * blob cache and the action executor. Used by `granary worker`; `granary serve`
 * runs the same thing in a child process.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from '../client/connection.js';
import { GrpcBlobStore } from '../client/grpcBlobStore.js';
import { RESOURCE_LIMITS_OFFER } from '../execution/platformMatch.js';
import { SANDBOX_PROPERTIES } from '../execution/sandboxProperties.js';
import type { PlatformProperty } from '../execution/types.js';
import type { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { DialOptions } from '../grpc/dial.js';
import type { StorageUsage } from '../storage/blobStore.js';
import { type ActionLimits, defaultLimitMaxima, describeLimits } from './actionLimits.js';
import { Bot } from './bot.js';
import type { ActionCgroups } from './cgroups/actionCgroups.js';
import { detectActionCgroups } from './cgroups/cgroupDetection.js';
import { executeAction, sandboxProfileFor } from './executeAction.js';
import { LocalCache } from './localCache.js';
import { nodeVisibleInSandbox, SandboxPool } from './persistentSandbox.js';
import { killRunningCommands } from './runner.js';
import { type ActionUser, bubblewrapProblem } from './sandbox.js';
import { SharedCas } from './sharedCas.js';

export type SandboxChoice = 'auto' | 'bubblewrap' | 'none';

export interface WorkerConfig {
  server: string;
  /** TLS settings and token for the farm's connection. */
  dial?: DialOptions;
  instanceName: string;
  botId: string;
  slots: number;
  platform: PlatformProperty[];
  workDirectory: string;
  cacheSizeBytes: number;
  /**
   * The farm's disk CAS directory, when the farm runs on this machine with
   * read-only blobs: plain inputs are hard-linked from there (see sharedCas.ts).
   */
  sharedCasDirectory?: string;
  /** Blobs of at most this many bytes are never in sharedCasDirectory (the farm keeps them in segment files). */
  sharedCasSmallBlobBytes?: number;
  sandbox: SandboxChoice;
  /** Timeout of actions that set none, when the server does not say (a Granary server always does). */
  defaultTimeoutMs: number;
  /**
   * Execution roots by name: actions whose platform asks for `execution-root=NAME`
   * (or `container-image=NAME`) see NAME's /usr, /bin, /lib* and /etc instead of
   * the host's. The property is part of the Action, so roots never share cache entries.
   */
  executionRoots?: Record<string, string>;
  /** The unprivileged user sandboxed actions run as, when the worker is root (see actionUser.ts). */
  actionUser?: ActionUser;
  /** The most an action may ask for, and what it gets when it asks for nothing (default: defaultLimitMaxima). */
  limitMaxima?: ActionLimits;
  /** Per-action cgroups: found at start (detectActionCgroups) unless given; null for none. */
  cgroups?: ActionCgroups | null;
  log?: (message: string) => void;
  /** Told about every finished lease (the worker's metrics). */
  onActionFinished?: (response: ExecuteResponse) => void;
}

/** Platform property names that select an execution root. */
export const EXECUTION_ROOT_PROPERTIES = ['execution-root', 'container-image'];

export interface RunningWorker {
  /**
   * Stops taking work, gives running actions up to `drainTimeoutMs` (default 0) to
   * finish and be reported, stops and hands back the rest (the server queues them
   * again at once), ends the bot session and closes the worker.
   */
  stop(drainTimeoutMs?: number): Promise<void>;
  /** Stops at once, reporting nothing: for a process about to exit. */
  abort(): void;
  /** Leases held right now (running, or finished and not yet reported). */
  leaseCount(): number;
  /** What the local blob cache holds. */
  cacheUsage(): StorageUsage;
}

let exitHookInstalled = false;

/** The farm's CAS to link inputs from, or undefined (said in the log) when it cannot be used. */
async function openSharedCas(
  directory: string,
  smallBlobBytes: number,
  builds: string,
  log: (message: string) => void,
): Promise<SharedCas | undefined> {
  const opened = await SharedCas.open(directory, builds, { smallBlobBytes });
  if (opened instanceof SharedCas) {
    log(`granary worker: linking inputs from the farm's CAS in ${directory}`);
    return opened;
  }
  log(`granary worker: fetching every input: the farm's CAS cannot be shared (${opened.unusable})`);
  return undefined;
}

export async function startWorker(config: WorkerConfig): Promise<RunningWorker> {
  const log = config.log ?? ((m: string) => console.error(m));
  if (!exitHookInstalled) {
    // However this process ends (short of SIGKILL), no command it started outlives it.
    process.on('exit', killRunningCommands);
    exitHookInstalled = true;
  }
  const sandboxProblem = config.sandbox === 'none' ? undefined : await bubblewrapProblem();
  if (config.sandbox === 'bubblewrap' && sandboxProblem) {
    throw new Error(`--sandbox bubblewrap was asked for, but ${sandboxProblem}`);
  }
  const useBubblewrap = config.sandbox !== 'none' && sandboxProblem === undefined;
  if (!useBubblewrap) {
    log('granary worker: WARNING: running actions WITHOUT a sandbox: they can read and write anything this user can');
    // `auto` without a usable bubblewrap: say why, since hermetic actions (every granary build element) are refused.
    if (sandboxProblem) log(`granary worker: no sandbox because ${sandboxProblem}`);
  } else if (config.actionUser) {
    log(
      `granary worker: sandboxed actions run as uid ${config.actionUser.uid} (gid ${config.actionUser.gid}), hermetic ones as root with reduced capabilities`,
    );
  } else if (process.getuid?.() === 0) {
    log('granary worker: WARNING: actions run as root inside the sandbox (--action-user root)');
  }
  const limits = await actionLimitsOf(config, log);
  const connection = connect(config.server, config.instanceName, config.dial);
  const cas = new GrpcBlobStore(connection);
  const cache = await LocalCache.open({
    directory: join(config.workDirectory, 'cache'),
    maximumSizeBytes: config.cacheSizeBytes,
  });
  const builds = join(config.workDirectory, 'builds');
  await rm(builds, { recursive: true, force: true });
  await mkdir(builds, { recursive: true });
  const sharedCas = config.sharedCasDirectory
    ? await openSharedCas(config.sharedCasDirectory, config.sharedCasSmallBlobBytes ?? 0, builds, log)
    : undefined;
  const roots = config.executionRoots ?? {};
  if (Object.keys(roots).length > 0 && !useBubblewrap) {
    throw new Error('execution roots need the bubblewrap sandbox');
  }
  const rootProperties = Object.keys(roots).flatMap((name) =>
    EXECUTION_ROOT_PROPERTIES.map((property) => ({ name: property, value: name })),
  );
  // One persistent sandbox per slot where reusing one is safe (see persistentSandbox.ts).
  const sandboxes =
    useBubblewrap && config.actionUser && nodeVisibleInSandbox()
      ? new SandboxPool({
          directory: builds,
          actionUser: config.actionUser,
          extraBinds: limits?.cgroups.parentDirectories ?? [],
          log,
          prestart: config.slots,
        })
      : undefined;
  /** Removals of finished actions' directories still running (see deferCleanup). */
  const cleanups = new Set<Promise<void>>();
  const bot = new Bot({
    server: config.server,
    dial: config.dial,
    botId: config.botId,
    instanceName: config.instanceName,
    slots: config.slots,
    // A sandboxing worker offers both profiles; actions pick one with `sandbox=...`.
    platform: [
      ...(useBubblewrap ? [...config.platform, ...rootProperties, ...SANDBOX_PROPERTIES] : config.platform),
      // Actions asking for memory-limit, cpu-limit or process-limit come only to workers that enforce them.
      ...(limits ? [RESOURCE_LIMITS_OFFER] : []),
    ],
    log,
    execute: async (work, signal) => {
      // Removals of finished actions' directories run after their results are
      // reported, but never pile up beyond one per slot.
      while (cleanups.size >= config.slots) await Promise.race(cleanups);
      return executeAction(
        { ...work, instanceName: config.instanceName },
        {
          cas,
          cache,
          sharedCas,
          workDirectory: builds,
          sandbox: useBubblewrap ? (properties) => sandboxProfileFor(properties) : 'none',
          systemRootFor: (properties) => {
            const wanted = properties.find((p) => EXECUTION_ROOT_PROPERTIES.includes(p.name));
            return wanted ? (roots[wanted.value] ?? '/') : '/';
          },
          defaultTimeoutMs: config.defaultTimeoutMs,
          signal,
          workerName: config.botId,
          deferCleanup: (removal) => {
            const tracked = removal.finally(() => cleanups.delete(tracked));
            cleanups.add(tracked);
          },
          actionUser: config.actionUser,
          limits,
          log,
          sandboxes,
        },
      ).then((response) => {
        try {
          config.onActionFinished?.(response);
        } catch {
          // Metrics must not change the outcome.
        }
        return response;
      });
    },
  });
  void bot.run();
  async function waitForCleanups(): Promise<void> {
    await Promise.allSettled([...cleanups]);
  }
  let closed: Promise<void> | undefined;
  return {
    cacheUsage: () => cache.usage(),
    stop: (drainTimeoutMs = 0) => {
      closed ??= (async () => {
        await bot.drain(drainTimeoutMs);
        await waitForCleanups();
        await sandboxes?.close();
        connection.close();
        await cache.close();
      })();
      return closed;
    },
    abort: () => {
      bot.stop();
      sandboxes?.kill();
      killRunningCommands();
    },
    leaseCount: () => bot.leaseCount,
  };
}

/** The cgroups and maxima actions run under, said once at start; undefined (and why) when there are no cgroups. */
async function actionLimitsOf(
  config: WorkerConfig,
  log: (message: string) => void,
): Promise<{ cgroups: ActionCgroups; maxima: ActionLimits } | undefined> {
  const maxima = config.limitMaxima ?? defaultLimitMaxima();
  let cgroups = config.cgroups;
  let reasons: string[] = [];
  if (cgroups === undefined) ({ cgroups, reasons } = await detectActionCgroups());
  if (!cgroups) {
    log(
      'granary worker: WARNING: no usable cgroups, so actions run WITHOUT memory, CPU or process limits, and ' +
        `actions asking for limits are refused (${reasons.join('; ') || 'none given'}); see SECURITY.md`,
    );
    return undefined;
  }
  log(`granary worker: actions run in ${cgroups.description}, limited to at most ${describeLimits(maxima)} each`);
  return { cgroups, maxima };
}
