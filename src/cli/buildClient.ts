/**
 * What the meta-build commands share: finding the project, reading the client
 * configuration, and reaching a farm: the one named by --remote (or the config
 * file), or else an embedded farm started in this process.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cpus, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { type Connection, connect } from '../client/connection.js';
import { GrpcBlobStore } from '../client/grpcBlobStore.js';
import { Builder, type BuilderOptions } from '../build/builder.js';
import { loadProject, type Project } from '../build/project/index.js';
import { startFarm } from '../server/farm.js';
import { startWorker } from '../worker/workerProcess.js';
import { type FlagSpec, flag, type ParsedArgs, UsageError } from './args.js';
import { hostPlatform } from './worker.js';

export const CLIENT_FLAGS: Record<string, FlagSpec> = {
  remote: { type: 'string', help: 'the farm, grpc://HOST:PORT (default: an embedded local farm)' },
  instance: { type: 'string', help: 'REAPI instance name' },
  project: { type: 'string', default: '.', help: 'project directory (holding project.conf)' },
  config: { type: 'string', help: 'client configuration file (YAML with remote:, instance:)' },
  help: { type: 'boolean', help: 'show this help' },
};

export interface ClientSession {
  project: Project;
  builder: Builder;
  connection: Connection;
  cas: GrpcBlobStore;
  close(): Promise<void>;
}

function cacheHome(): string {
  return process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
}

function readConfig(args: ParsedArgs): { remote?: string; instance?: string } {
  const explicit = flag(args, 'config');
  const path = explicit ?? join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'granary', 'client.yaml');
  if (!existsSync(path)) {
    if (explicit) throw new UsageError(`configuration file ${path} does not exist`);
    return {};
  }
  const parsed = parse(readFileSync(path, 'utf8')) as Record<string, unknown> | null;
  const out: { remote?: string; instance?: string } = {};
  for (const [key, value] of Object.entries(parsed ?? {})) {
    if (key !== 'remote' && key !== 'instance') throw new UsageError(`${path}: unknown key '${key}'`);
    if (typeof value !== 'string') throw new UsageError(`${path}: '${key}' must be a string`);
    out[key] = value;
  }
  return out;
}

export async function openClient(
  args: ParsedArgs,
  options: Pick<BuilderOptions, 'jobs' | 'keepGoing' | 'onEvent'> = {},
): Promise<ClientSession> {
  const config = readConfig(args);
  const project = await loadProject(resolve(flag(args, 'project') as string));
  const remote = flag(args, 'remote') ?? config.remote;
  const instance = flag(args, 'instance') ?? config.instance ?? '';
  let closeFarm = async () => {};
  let url = remote;
  if (!url) {
    const data = join(cacheHome(), 'granary', 'local-farm');
    await mkdir(data, { recursive: true });
    const farm = await startFarm({
      listen: '127.0.0.1:0',
      cas: { disk: { directory: join(data, 'cas'), maximumSizeBytes: 20 * 1024 ** 3 } },
      actionCache: { disk: { directory: join(data, 'ac'), maximumSizeBytes: 512 * 1024 ** 2 } },
      stateDirectory: undefined,
    });
    url = `grpc://${farm.address}`;
    const worker = await startWorker({
      server: url,
      instanceName: '',
      botId: 'embedded-build',
      slots: cpus().length,
      platform: hostPlatform(),
      workDirectory: join(data, 'worker'),
      cacheSizeBytes: 8 * 1024 ** 3,
      sandbox: 'auto',
      defaultTimeoutMs: 60 * 60_000,
      log: () => {},
    });
    closeFarm = async () => {
      await worker.stop();
      await farm.close();
    };
  }
  const connection = connect(url, instance);
  const cas = new GrpcBlobStore(connection);
  const downloads = join(cacheHome(), 'granary', 'downloads');
  await mkdir(downloads, { recursive: true });
  const builder = new Builder({
    project,
    connection,
    cas,
    cacheDirectory: downloads,
    platform: [...hostPlatform(), { name: 'sandbox', value: 'hermetic' }],
    ...options,
  });
  return {
    project,
    builder,
    connection,
    cas,
    close: async () => {
      connection.close();
      await closeFarm();
    },
  };
}
