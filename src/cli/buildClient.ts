/**
 * What the meta-build commands share: finding the project, reading the client
 * configuration, and reaching a farm: the one named by --remote (or the config
 * file), or else an embedded farm started in this process.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cpus, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Connection, connect } from '../client/connection.js';
import { GrpcBlobStore } from '../client/grpcBlobStore.js';
import { type AssetService, GrpcAssetClient } from '../client/remoteAsset.js';
import type { PlatformProperty } from '../execution/types.js';
import { Builder, type BuilderOptions } from '../metabuild/builder.js';
import { junctionStager } from '../metabuild/junctionStager.js';
import { loadProject, type Project } from '../metabuild/project/index.js';
import { startFarm } from '../server/farm.js';
import type { BlobStore } from '../storage/blobStore.js';
import { DirectoryInUseError } from '../util/directoryLock.js';
import { readYamlValue, YamlInputError } from '../util/yamlInput.js';
import { startWorker } from '../worker/workerProcess.js';
import { type FlagSpec, flag, type ParsedArgs, UsageError } from './args.js';
import {
  CLIENT_SECURITY_FLAGS,
  type ClientSecuritySettings,
  clientDialOptions,
  clientSecurityFlags,
} from './clientSecurity.js';
import { hostPlatform } from './worker.js';

export const CLIENT_FLAGS: Record<string, FlagSpec> = {
  remote: { type: 'string', help: 'the farm, grpc://HOST:PORT or grpcs://HOST:PORT (default: an embedded local farm)' },
  instance: { type: 'string', help: 'REAPI instance name' },
  ...CLIENT_SECURITY_FLAGS,
  project: { type: 'string', default: '.', help: 'project directory (holding project.conf)' },
  config: {
    type: 'string',
    help: 'client configuration file (YAML with remote:, instance:, tls-ca:, tls-cert:, tls-key:, token-file:)',
  },
  option: { type: 'list', help: 'a project option of a BuildStream 2 project, NAME=VALUE (repeatable)' },
  help: { type: 'boolean', help: 'show this help' },
};

/** A farm to talk to: the one named by --remote (or the config file), or an embedded one. */
export interface FarmSession {
  connection: Connection;
  /** True for the farm started in this process (no --remote), which stops with the command. */
  embedded: boolean;
  cas: BlobStore;
  asset: AssetService;
  close(): Promise<void>;
}

export interface ClientSession extends FarmSession {
  project: Project;
  builder: Builder;
}

function cacheHome(): string {
  return process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
}

/** What the client configuration file may set; file names in it are relative to the file. */
interface ClientConfig extends ClientSecuritySettings {
  remote?: string;
  instance?: string;
}

const CONFIG_KEYS: Record<string, keyof ClientConfig> = {
  remote: 'remote',
  instance: 'instance',
  'tls-ca': 'tlsCa',
  'tls-cert': 'tlsCert',
  'tls-key': 'tlsKey',
  'token-file': 'tokenFile',
};
const CONFIG_FILE_KEYS = new Set<keyof ClientConfig>(['tlsCa', 'tlsCert', 'tlsKey', 'tokenFile']);

function readConfig(args: ParsedArgs): ClientConfig {
  const explicit = flag(args, 'config');
  const path = explicit ?? join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'granary', 'client.yaml');
  if (!existsSync(path)) {
    if (explicit) throw new UsageError(`configuration file ${path} does not exist`);
    return {};
  }
  let parsed: Record<string, unknown> | null;
  try {
    parsed = readYamlValue(readFileSync(path, 'utf8')) as Record<string, unknown> | null;
  } catch (error) {
    if (!(error instanceof YamlInputError)) throw error;
    throw new UsageError(`${path}: ${error.message}`);
  }
  const out: ClientConfig = {};
  for (const [key, value] of Object.entries(parsed ?? {})) {
    const field = CONFIG_KEYS[key];
    if (!field) throw new UsageError(`${path}: unknown key '${key}'`);
    if (typeof value !== 'string') throw new UsageError(`${path}: '${key}' must be a string`);
    out[field] = CONFIG_FILE_KEYS.has(field) ? resolve(dirname(path), value) : value;
  }
  return out;
}

/** The platform of element builds: this host's, in the hermetic sandbox. */
export function buildPlatform(): PlatformProperty[] {
  return [...hostPlatform(), { name: 'sandbox', value: 'hermetic' }];
}

/** Connects to the farm of --remote / --instance / the config file, or starts an embedded one. */
export async function openFarm(args: ParsedArgs): Promise<FarmSession> {
  const config = readConfig(args);
  const remote = flag(args, 'remote') ?? config.remote;
  const instance = flag(args, 'instance') ?? config.instance ?? '';
  let closeFarm = async () => {};
  let url = remote;
  if (!url) {
    const builtIn = await startBuiltInFarm(join(cacheHome(), 'granary', 'local-farm'));
    url = builtIn.url;
    closeFarm = builtIn.close;
  }
  // Flags win over the configuration file, setting by setting.
  const flags = clientSecurityFlags(args);
  const security: ClientSecuritySettings = {
    tlsCa: flags.tlsCa ?? config.tlsCa,
    tlsCert: flags.tlsCert ?? config.tlsCert,
    tlsKey: flags.tlsKey ?? config.tlsKey,
    tokenFile: flags.tokenFile ?? config.tokenFile,
  };
  const connection = connect(url, instance, remote ? clientDialOptions(security) : {});
  return {
    connection,
    embedded: !remote,
    cas: new GrpcBlobStore(connection),
    asset: new GrpcAssetClient(connection),
    close: async () => {
      connection.close();
      await closeFarm();
    },
  };
}

/**
 * The farm `granary build` runs inside itself without --remote: a server and a
 * worker on `data`, stopped with the command. Its stores lock their directories
 * (util/directoryLock.ts), so it serves one command at a time: a second one waits
 * for the first, as a second Bazel command waits for the first.
 */
async function startBuiltInFarm(data: string): Promise<{ url: string; close: () => Promise<void> }> {
  await mkdir(data, { recursive: true });
  let told = false;
  for (;;) {
    try {
      return await startFarmAndWorker(data);
    } catch (error) {
      if (!(error instanceof DirectoryInUseError)) throw error;
      if (!told) {
        console.error(
          `granary: another granary command (pid ${error.ownerPid}) is using the built-in farm in ${data}; waiting for it to finish (or run granary serve and pass --remote to share one farm)`,
        );
        told = true;
      }
      await sleep(BUILT_IN_FARM_POLL_MS);
    }
  }
}

/** How often a command waiting for the built-in farm tries again. */
const BUILT_IN_FARM_POLL_MS = 500;

async function startFarmAndWorker(data: string): Promise<{ url: string; close: () => Promise<void> }> {
  const stops: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    // The worker links plain inputs from the CAS's read-only files, so its own cache holds
    // executables and what it could not link. README's "Building BuildStream-format projects" states these bounds.
    const farm = await startFarm({
      listen: '127.0.0.1:0',
      cas: { disk: { path: join(data, 'cas'), maxSizeBytes: 20 * 1024 ** 3, readOnlyBlobs: true } },
      actionCache: { disk: { path: join(data, 'ac'), maxSizeBytes: 512 * 1024 ** 2 } },
      // On disk like the rest, so what `granary publish` pushed is there for the next command.
      asset: { disk: { path: join(data, 'asset'), maxSizeBytes: 512 * 1024 ** 2 } },
      stateDirectory: undefined,
      // Element builds may run long: the one timeout of actions that set none, carried to the worker.
      execution: { defaultTimeoutMs: 60 * 60_000 },
    });
    stops.push(() => farm.close());
    const url = `grpc://${farm.address}`;
    const worker = await startWorker({
      server: url,
      instanceName: '',
      botId: 'embedded-build',
      slots: cpus().length,
      platform: hostPlatform(),
      workDirectory: join(data, 'worker'),
      cacheSizeBytes: 2 * 1024 ** 3,
      sharedCasDirectory: join(data, 'cas'),
      sandbox: 'auto',
      defaultTimeoutMs: 60 * 60_000,
      log: () => {},
    });
    stops.push(() => worker.stop());
    return { url, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The `--option NAME=VALUE` flags as pairs. */
function projectOptions(args: ParsedArgs): [string, string][] {
  return (args.flags.get('option') ?? []).map((text) => {
    const equals = text.indexOf('=');
    if (equals <= 0) throw new UsageError(`--option expects NAME=VALUE, got '${text}'`);
    return [text.slice(0, equals), text.slice(equals + 1)];
  });
}

/** Loads the project of --project and opens a Builder on the farm (the given one, or as openFarm does). */
export async function openClient(
  args: ParsedArgs,
  options: Pick<BuilderOptions, 'jobs' | 'keepGoing' | 'onEvent' | 'rebuild'> & {
    /** The elements the command is about (BuildStream 2 projects load only these and what they need). */
    targets?: readonly string[];
  } = {},
  farmSession?: FarmSession,
): Promise<ClientSession> {
  const { targets, ...builderOptions } = options;
  const downloads = join(cacheHome(), 'granary', 'downloads');
  await mkdir(downloads, { recursive: true });
  const project = await loadProject(resolve(flag(args, 'project') as string), {
    targets: targets ?? args.positionals,
    options: projectOptions(args),
    stageJunction: junctionStager(downloads),
  });
  const farm = farmSession ?? (await openFarm(args));
  const { connection, cas, asset } = farm;
  const builder = new Builder({
    project,
    connection,
    cas,
    asset,
    cacheDirectory: downloads,
    platform: buildPlatform(),
    ...builderOptions,
  });
  return { ...farm, project, builder };
}
