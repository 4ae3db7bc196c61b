/**
 * `granary serve`: the all-in-one farm on local disk, or, with --database, one
 * frontend of a farm whose shared state is in PostgreSQL. Its embedded worker is a
 * child process tied to it by an IPC channel: asked to drain over it when the farm
 * stops, and gone on its own when the channel closes because the farm died.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MAXIMUM_REDIRECTS } from '../asset/downloader.js';
import { FetchPolicy } from '../asset/fetchPolicy.js';
import type { InternalCredential } from '../auth/callerAuthenticator.js';
import { connect } from '../client/connection.js';
import { GrpcBlobStore } from '../client/grpcBlobStore.js';
import { TOKEN_ENVIRONMENT_VARIABLE } from '../client/tokenSource.js';
import { parsePlatformMatchRules } from '../execution/platformMatch.js';
import { startFarm } from '../server/farm.js';
import { MAXIMUM_DOWNLOAD_BYTES } from '../server/storageServer.js';
import type { OpenedStore } from '../storage/storageConfig.js';
import { formatSize, parseSize } from '../util/size.js';
import { type FlagSpec, flag, parseArgs, parseDuration, UsageError, usage } from './args.js';
import { openServerSecurity, SERVER_SECURITY_FLAGS } from './serverSecurity.js';
import { DRAIN_MESSAGE, onShutdownRequests } from './shutdownRequests.js';
import { DEFAULT_DRAIN_TIMEOUT } from './worker.js';

const FLAGS: Record<string, FlagSpec> = {
  listen: { type: 'string', default: '127.0.0.1:8980', help: 'address to listen on, HOST:PORT' },
  data: { type: 'string', default: './.granary', help: 'directory for the CAS, action cache and state' },
  'max-size': { type: 'string', default: '10GiB', help: 'upper bound on stored data (e.g. 10GiB, 500MiB)' },
  'retention-grace': {
    type: 'string',
    default: '3h',
    help: 'keep blobs referenced by a served action result at least this long',
  },
  'fetch-allow': {
    type: 'list',
    help: 'let the remote downloader reach a host refused by default (loopback, private, link-local, metadata...): HOST, *.DOMAIN, ADDRESS or ADDRESS/LENGTH',
  },
  'fetch-max-redirects': {
    type: 'string',
    default: String(DEFAULT_MAXIMUM_REDIRECTS),
    help: 'redirects the remote downloader follows per URI',
  },
  'fetch-max-size': {
    type: 'string',
    default: formatSize(MAXIMUM_DOWNLOAD_BYTES),
    help: 'largest file the remote downloader fetches (never more than --max-size)',
  },
  'quota-concurrent-operations': {
    type: 'string',
    help: 'per caller: Execute operations in flight (queued or running) at most; more are refused with RESOURCE_EXHAUSTED (default: no limit)',
  },
  'quota-queued-operations': {
    type: 'string',
    help: 'per caller: operations waiting for a worker at most (default: no limit)',
  },
  'quota-upload-per-minute': {
    type: 'string',
    help: 'per caller: bytes uploaded to the CAS per minute on average, e.g. 2GiB (default: no limit)',
  },
  'asset-retention': {
    type: 'string',
    default: '24h',
    help: 'content of a Remote Asset is kept at least this long after each push or fetch (or until it expires)',
  },
  workers: {
    type: 'string',
    default: String(cpus().length),
    help: 'execution slots of the embedded worker (one per core by default; 0 for none)',
  },
  'worker-platform': { type: 'list', help: 'extra platform property KEY=VALUE of the embedded worker' },
  'worker-timeout': { type: 'string', default: '30s', help: 'a worker silent this long loses its actions (re-queued)' },
  sandbox: { type: 'string', default: 'auto', help: 'embedded worker sandbox: auto, bubblewrap or none' },
  'platform-match': {
    type: 'list',
    help: 'how a platform property is matched, NAME=exact|minimum|priority|ignore (default exact)',
  },
  database: {
    type: 'string',
    help: 'postgresql://USER@HOST:PORT/DB: keep the scheduler, action cache and asset records there; every granary serve with the same database is one farm',
  },
  'storage-node': {
    type: 'list',
    help: 'grpc://HOST:PORT: keep the CAS on this storage node (a granary serve that the frontends of a farm share) instead of under --data',
  },
  'database-records-size': {
    type: 'string',
    default: '1GiB',
    help: 'with --database: bound on the action cache, and separately on the asset records, kept in the database',
  },
  'worker-drain-timeout': {
    type: 'string',
    default: DEFAULT_DRAIN_TIMEOUT,
    help: 'when stopping, how long the embedded worker may finish running actions before handing them back',
  },
  ...SERVER_SECURITY_FLAGS,
  help: { type: 'boolean', help: 'show this help' },
};

/**
 * The embedded worker's credential when the farm is secured: a random token made
 * at start, handed to the child in its environment and accepted only while this
 * process runs, for just what a worker does.
 */
function embeddedWorkerCredential(): InternalCredential {
  return {
    token: randomBytes(32).toString('base64url'),
    principal: {
      name: 'embedded-worker',
      kind: 'internal',
      scopes: new Set(['read', 'cas-write', 'bots']),
      instances: ['*'],
    },
  };
}

export async function serveCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, FLAGS);
  if (flag(args, 'help')) {
    console.log(usage('serve [flags]', 'Runs the all-in-one Granary farm on this machine.', FLAGS));
    return;
  }
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${args.positionals[0]}`);
  const listen = flag(args, 'listen') as string;
  if (!/^.+:\d+$/.test(listen)) throw new UsageError(`--listen must be HOST:PORT, got "${listen}"`);
  const data = resolve(flag(args, 'data') as string);
  const maximumSizeBytes = parseSizeFlag(args, 'max-size');
  const retentionGraceMs = parseDuration(flag(args, 'retention-grace') as string);
  await mkdir(data, { recursive: true });
  // The action cache and the asset records hold small entries; give each a small slice of the budget.
  const actionCacheBytes = Math.max(16 * 1024 * 1024, Math.floor(maximumSizeBytes / 50));
  const drainTimeoutMs = parseDuration(flag(args, 'worker-drain-timeout') as string);
  const workers = Number(flag(args, 'workers'));
  if (!Number.isSafeInteger(workers) || workers < 0) throw new UsageError('--workers must be a non-negative integer');
  let platformMatch: ReturnType<typeof parsePlatformMatchRules>;
  try {
    platformMatch = parsePlatformMatchRules(args.flags.get('platform-match') ?? []);
  } catch (error) {
    throw new UsageError(`--platform-match: ${(error as Error).message}`);
  }
  let fetchPolicy: FetchPolicy;
  try {
    fetchPolicy = new FetchPolicy(args.flags.get('fetch-allow') ?? []);
  } catch (error) {
    throw new UsageError(`--fetch-allow: ${(error as Error).message}`);
  }
  const maximumDownloadRedirects = Number(flag(args, 'fetch-max-redirects'));
  if (!Number.isSafeInteger(maximumDownloadRedirects) || maximumDownloadRedirects < 0) {
    throw new UsageError('--fetch-max-redirects must be a non-negative integer');
  }
  const maximumDownloadBytes = parseSizeFlag(args, 'fetch-max-size');
  const operationQuotas = {
    concurrent: optionalCount(args, 'quota-concurrent-operations'),
    queued: optionalCount(args, 'quota-queued-operations'),
  };
  const uploadBytesPerMinute = flag(args, 'quota-upload-per-minute')
    ? parseSizeFlag(args, 'quota-upload-per-minute')
    : undefined;
  const databaseUrl = flag(args, 'database');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new UsageError(`--database must be a postgresql:// URL, got "${databaseUrl}"`);
  }
  const maximumRecordBytes = parseSizeFlag(args, 'database-records-size');
  const storageNodes = args.flags.get('storage-node') ?? [];
  if (storageNodes.length > 1) {
    throw new UsageError('--storage-node: one storage node for now (several, sharded and replicated, are to come)');
  }
  const storageNode = storageNodes[0];
  // With a database, the action cache and asset records live there and the CAS has the whole budget.
  const casBytes = databaseUrl
    ? maximumSizeBytes
    : maximumSizeBytes - Math.min(2 * actionCacheBytes, maximumSizeBytes / 2);
  const workerCredential = embeddedWorkerCredential();
  const security = await openServerSecurity(args, {
    internal: [workerCredential],
    log: (line) => console.error(`granary: ${line}`),
  });
  const secured = security.policy.enforced || security.tls !== undefined;
  // A secured farm's embedded worker reaches it on a private socket (no TLS to verify, no client certificate).
  const privateDirectory = secured ? await mkdtemp(join(tmpdir(), 'granary-serve-')) : undefined;
  const removePrivateDirectory = () => {
    if (privateDirectory) rmSync(privateDirectory, { recursive: true, force: true });
  };
  const workerSocket = privateDirectory && `unix:${join(privateDirectory, 'worker.sock')}`;
  let server: Awaited<ReturnType<typeof startFarm>>;
  try {
    server = await startFarm({
      fetchPolicy,
      maximumDownloadRedirects,
      maximumDownloadBytes,
      operationQuotas,
      uploadBytesPerMinute,
      database: databaseUrl ? { url: databaseUrl, maximumRecordBytes } : undefined,
      stateDirectory: join(data, 'scheduler'),
      platformMatch,
      workerTimeoutMs: parseDuration(flag(args, 'worker-timeout') as string),
      listen,
      tls: security.tls,
      hooks: security.hooks,
      additionalListeners: workerSocket ? [{ address: workerSocket }] : [],
      casBackend: storageNode ? remoteCas(storageNode) : undefined,
      cas: {
        disk: {
          directory: join(data, 'cas'),
          maximumSizeBytes: casBytes,
        },
      },
      actionCache: { disk: { directory: join(data, 'ac'), maximumSizeBytes: actionCacheBytes } },
      // Remote Asset records are small (a few hundred bytes each): the same small slice.
      asset: { disk: { directory: join(data, 'asset'), maximumSizeBytes: actionCacheBytes } },
      assetRetentionMs: parseDuration(flag(args, 'asset-retention') as string),
      retentionGraceMs,
    });
  } catch (error) {
    security.close();
    removePrivateDirectory();
    throw error;
  }
  const url = `${security.tls ? 'grpcs' : 'grpc'}://${server.address}`;
  console.log(`granary: serving on ${server.address} (data in ${data}, up to ${formatSize(maximumSizeBytes)})`);
  if (databaseUrl)
    console.log(`granary: farm state in ${describeDatabase(databaseUrl)}, shared by every frontend using it`);
  const { info, warnings } = security.describe(listen);
  for (const line of info) console.log(`granary: ${line}`);
  for (const line of warnings) console.error(`granary: WARNING: ${line}`);
  const clientFlags = [
    ...(security.tls ? ['--tls_certificate=CA.pem'] : []),
    ...(security.policy.enforced ? ['--remote_header=Authorization="Bearer $TOKEN"'] : []),
  ].join(' ');
  const extra = clientFlags === '' ? '' : ` ${clientFlags}`;
  console.log('granary: use it from Bazel with:');
  console.log(`  remote cache:     --remote_cache=${url}${extra}`);
  console.log(`  remote execution: --remote_executor=${url} --spawn_strategy=remote${extra}`);
  console.log(`  downloads:        --experimental_remote_downloader=${url} --remote_cache=${url}${extra}`);
  const worker =
    workers > 0
      ? startEmbeddedWorker(workerSocket ?? url, workers, join(data, 'worker'), flag(args, 'sandbox') as string, {
          platform: args.flags.get('worker-platform') ?? [],
          drainTimeoutMs,
          token: security.policy.enforced ? workerCredential.token : undefined,
        })
      : undefined;
  const onHangup = () => {
    void security.reload().then((lines) => {
      for (const line of lines) console.error(`granary: SIGHUP: ${line}`);
    });
  };
  process.on('SIGHUP', onHangup);
  console.log('granary: press Ctrl-C to stop');
  let stopListening = () => {};
  await new Promise<void>((resolveStop) => {
    stopListening = onShutdownRequests({
      graceful: (reason) => {
        console.log(`granary: ${reason} received, finishing in-flight work (again to stop at once)`);
        stopEmbeddedWorker(worker, drainTimeoutMs)
          .then(() => server.close())
          .then(() => {
            security.close();
            removePrivateDirectory();
          })
          .then(resolveStop, (error: unknown) => {
            console.error('granary: error while stopping:', error);
            resolveStop();
          });
      },
      // Like a crash, which the storage and the scheduler state survive; the embedded
      // worker sees its channel close and stops at once too.
      immediate: (reason, exitCode) => {
        console.log(`granary: ${reason}: stopping at once`);
        removePrivateDirectory();
        process.exit(exitCode);
      },
    });
  });
  stopListening();
  process.off('SIGHUP', onHangup);
  console.log('granary: stopped');
}

/** A positive integer flag, or undefined when not given. */
function optionalCount(args: ReturnType<typeof parseArgs>, name: string): number | undefined {
  const text = flag(args, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`--${name} must be a positive integer, got "${text}"`);
  }
  return value;
}

/** The CAS of a storage node, over gRPC (plain text: the farm's private network). */
function remoteCas(address: string): OpenedStore {
  const connection = connect(address);
  return {
    store: new GrpcBlobStore(connection),
    close: async () => connection.close(),
  };
}

/** The database's URL without its password, for the log. */
function describeDatabase(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    return parsed.toString();
  } catch {
    return 'the database';
  }
}

function parseSizeFlag(args: ReturnType<typeof parseArgs>, name: string): number {
  try {
    return parseSize(flag(args, name) as string);
  } catch (error) {
    throw new UsageError(`--${name}: ${(error as Error).message}`);
  }
}

/** Runs the embedded worker as a child process through the same code as `granary worker`. */
function startEmbeddedWorker(
  url: string,
  slots: number,
  workDirectory: string,
  sandbox: string,
  options: { platform: string[]; drainTimeoutMs: number; token: string | undefined },
): ChildProcess {
  const bin = fileURLToPath(new URL('../../../bin/granary.js', import.meta.url));
  const args = [
    'worker',
    '--server',
    url,
    '--slots',
    String(slots),
    '--work-dir',
    workDirectory,
    '--sandbox',
    sandbox,
    '--bot-id',
    'embedded',
    '--drain-timeout',
    `${options.drainTimeoutMs}ms`,
  ];
  for (const p of options.platform) args.push('--platform', p);
  // The IPC channel is the lifeline: the worker stops at once when it closes, which
  // the kernel does when this process ends, however it ends (SIGKILL included).
  // The token goes in the environment, never on the command line (which every local user can read).
  const env =
    options.token === undefined ? process.env : { ...process.env, [TOKEN_ENVIRONMENT_VARIABLE]: options.token };
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM') console.error(`granary: embedded worker exited (${signal ?? code})`);
  });
  return child;
}

/** Extra time, past the drain timeout, for the worker to stop what is left and hand it back. */
const WORKER_STOP_MARGIN_MS = 15_000;

/**
 * Asks the embedded worker to drain (it may already be, if a terminal's Ctrl-C
 * reached it too) and waits for it to exit, while the farm still serves it.
 */
function stopEmbeddedWorker(child: ChildProcess | undefined, drainTimeoutMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveExit) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), drainTimeoutMs + WORKER_STOP_MARGIN_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveExit();
    });
    const signal = () => child.kill('SIGTERM');
    if (child.connected) child.send(DRAIN_MESSAGE, (error) => error && signal());
    else signal();
  });
}
