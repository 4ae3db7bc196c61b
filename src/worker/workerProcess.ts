/**
 * Assembles a worker: the bot loop, a connection to the farm's CAS, the local
 * blob cache and the action executor. Used by `granary worker`; `granary serve`
 * runs the same thing in a child process.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, parseTarget } from '../client/connection.js';
import { GrpcBlobStore } from '../client/grpcBlobStore.js';
import type { PlatformProperty } from '../execution/types.js';
import { Bot } from './bot.js';
import { executeAction, sandboxProfileFor } from './executeAction.js';
import { LocalCache } from './localCache.js';
import { bubblewrapAvailable } from './sandbox.js';

export type SandboxChoice = 'auto' | 'bubblewrap' | 'none';

export interface WorkerConfig {
  server: string;
  instanceName: string;
  botId: string;
  slots: number;
  platform: PlatformProperty[];
  workDirectory: string;
  cacheSizeBytes: number;
  sandbox: SandboxChoice;
  defaultTimeoutMs: number;
  log?: (message: string) => void;
}

export interface RunningWorker {
  stop(): Promise<void>;
}

export async function startWorker(config: WorkerConfig): Promise<RunningWorker> {
  const log = config.log ?? ((m: string) => console.error(m));
  const useBubblewrap = config.sandbox === 'bubblewrap' || (config.sandbox === 'auto' && (await bubblewrapAvailable()));
  if (config.sandbox === 'bubblewrap' && !(await bubblewrapAvailable())) {
    throw new Error('--sandbox bubblewrap was asked for but bwrap is not usable on this machine');
  }
  if (!useBubblewrap) {
    log('granary worker: WARNING: running actions WITHOUT a sandbox: they can read and write anything this user can');
  }
  const connection = connect(config.server, config.instanceName);
  const cas = new GrpcBlobStore(connection);
  const cache = await LocalCache.open({
    directory: join(config.workDirectory, 'cache'),
    maximumSizeBytes: config.cacheSizeBytes,
  });
  const builds = join(config.workDirectory, 'builds');
  await rm(builds, { recursive: true, force: true });
  await mkdir(builds, { recursive: true });
  const bot = new Bot({
    target: parseTarget(config.server),
    botId: config.botId,
    instanceName: config.instanceName,
    slots: config.slots,
    // A sandboxing worker offers both profiles; actions pick one with `sandbox=...`.
    platform: useBubblewrap
      ? [...config.platform, { name: 'sandbox', value: 'host-tools' }, { name: 'sandbox', value: 'hermetic' }]
      : config.platform,
    log,
    execute: (actionDigest, signal) =>
      executeAction(
        { actionDigest, instanceName: config.instanceName },
        {
          cas,
          cache,
          workDirectory: builds,
          sandbox: useBubblewrap ? (properties) => sandboxProfileFor(properties) : 'none',
          defaultTimeoutMs: config.defaultTimeoutMs,
          signal,
          workerName: config.botId,
        },
      ),
  });
  const running = bot.run();
  return {
    stop: async () => {
      bot.stop();
      await running;
      connection.close();
      await cache.close();
    },
  };
}
