/** `granary worker`: a standalone Remote Workers API bot that runs actions. */

import { existsSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { PlatformProperty } from '../execution/types.js';
import type { RunningHttpServer } from '../http/httpServer.js';
import { configureLogging, errorMessage, log, parseLogFormat } from '../observability/log.js';
import { createMetricsRegistry } from '../observability/metrics.js';
import { workerMetrics } from '../observability/workerMetrics.js';
import { ReloadingServerTls } from '../tls/serverTlsFiles.js';
import { parseSize } from '../util/size.js';
import { actionUserFor } from '../worker/actionUser.js';
import type { ActionUser } from '../worker/sandbox.js';
import { type RunningWorker, type SandboxChoice, startWorker, type WorkerConfig } from '../worker/workerProcess.js';
import { ACTION_LIMIT_FLAGS, actionLimitSettings, parseActionLimitFlags } from './actionLimitFlags.js';
import {
  type FlagSpec,
  flag,
  type ParsedArgs,
  parseArgs,
  parseDuration,
  parseSizeFlag,
  UsageError,
  usage,
} from './args.js';
import { CLIENT_SECURITY_FLAGS, clientDialOptions, clientSecurityFlags } from './clientSecurity.js';
import { applyConfigFile, applyFlagDefaults, type ConfigSetting, readConfigFile } from './configFile.js';
import { ensureFlagDirectory, inTermsOfDirectoryFlag } from './directoryFlag.js';
import { HTTP_LISTEN_HELP, startOperatorPort, validateHttpListen } from './operatorPort.js';
import { onShutdownRequests } from './shutdownRequests.js';

/**
 * Default grace period of a stopping worker. Long enough for the typical action
 * (a compile or a test shard) to finish and be reported rather than be run again;
 * shorter than the farm's default --worker-timeout (30 s), so draining never takes
 * longer than the farm would wait for a worker that died; and inside the stop
 * timeouts of the usual supervisors (Kubernetes 30 s, systemd 90 s), leaving time
 * to stop the rest and hand it back before they send SIGKILL.
 */
export const DEFAULT_DRAIN_TIMEOUT = '20s';

/** The flags of `granary worker` (each also a setting of its configuration file, see WORKER_SETTINGS). */
export const WORKER_FLAGS: Record<string, FlagSpec> = {
  config: { type: 'string', help: 'YAML file of settings (docs/configuration.md); flags override it' },
  server: {
    type: 'string',
    default: 'grpc://127.0.0.1:8980',
    help: 'the farm to serve, grpc://HOST:PORT or grpcs://HOST:PORT',
  },
  ...CLIENT_SECURITY_FLAGS,
  slots: { type: 'string', default: String(cpus().length), help: 'actions run at once' },
  platform: { type: 'list', help: 'a platform property KEY=VALUE this worker offers (repeatable)' },
  instance: { type: 'string', default: '', help: 'instance name of the bot session' },
  'work-dir': { type: 'string', default: './.granary-worker', help: 'scratch space and local blob cache' },
  'cache-size': { type: 'string', default: '4GiB', help: 'upper bound of the local blob cache' },
  'shared-cas': {
    type: 'string',
    help: "the farm's disk CAS directory, when the farm runs on this machine with read-only blobs: hard-link inputs from it instead of keeping copies",
  },
  'shared-cas-small-blobs': {
    type: 'string',
    default: '0',
    help: 'blobs of at most this size are never in --shared-cas (the farm keeps them elsewhere, as granary serve keeps blobs of up to 64 KiB in segment files): they are fetched without looking there',
  },
  sandbox: { type: 'string', default: 'auto', help: 'bubblewrap (auto uses it when installed) or none' },
  'action-user': {
    type: 'string',
    default: 'auto',
    help: 'who sandboxed actions run as when the worker is root: auto (nobody, 65534), UID[:GID], or root',
  },
  ...ACTION_LIMIT_FLAGS,
  'default-timeout': {
    type: 'string',
    default: '15m',
    help: 'timeout of actions that set none, when the server does not say (a Granary server always does)',
  },
  'drain-timeout': {
    type: 'string',
    default: DEFAULT_DRAIN_TIMEOUT,
    help: 'on SIGTERM/SIGINT, how long running actions may finish before they are stopped and handed back',
  },
  'bot-id': { type: 'string', help: 'bot id (default HOSTNAME-PID)' },
  'execution-root': {
    type: 'list',
    help: 'NAME=DIR: actions asking for execution-root=NAME see DIR/usr, /bin, /lib*, /etc (repeatable)',
  },
  'http-listen': { type: 'string', default: 'none', help: HTTP_LISTEN_HELP.replace('auto (gRPC port + 1) or ', '') },
  'http-tls-cert': {
    type: 'string',
    help: 'serve HTTPS on --http-listen with this certificate chain (PEM; reloaded when the file changes)',
  },
  'http-tls-key': { type: 'string', help: 'private key (PEM) of --http-tls-cert' },
  'log-format': { type: 'string', default: 'text', help: 'text (for people) or json (one object per line)' },
  help: { type: 'boolean', help: 'show this help' },
};

export function parsePlatform(values: readonly string[]): PlatformProperty[] {
  return values.map((text) => {
    const eq = text.indexOf('=');
    if (eq <= 0) throw new UsageError(`--platform expects KEY=VALUE, got "${text}"`);
    return { name: text.slice(0, eq), value: text.slice(eq + 1) };
  });
}

/** OSFamily and ISA of this machine, named as REAPI clients name them. */
export function hostPlatform(): PlatformProperty[] {
  const isa = process.arch === 'x64' ? 'x86-64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
  return [
    { name: 'OSFamily', value: process.platform },
    { name: 'ISA', value: isa },
  ];
}

/** Every setting of a worker configuration file, and the flag that also sets it. */
export const WORKER_SETTINGS: readonly ConfigSetting[] = [
  { path: 'server', flag: 'server', kind: 'string' },
  { path: 'instance', flag: 'instance', kind: 'string' },
  { path: 'botId', flag: 'bot-id', kind: 'string' },
  { path: 'slots', flag: 'slots', kind: 'string' },
  { path: 'platform', flag: 'platform', kind: 'pairs' },
  { path: 'workDir', flag: 'work-dir', kind: 'string' },
  { path: 'cacheSize', flag: 'cache-size', kind: 'string' },
  { path: 'sharedCas', flag: 'shared-cas', kind: 'string' },
  { path: 'sharedCasSmallBlobs', flag: 'shared-cas-small-blobs', kind: 'string' },
  { path: 'sandbox', flag: 'sandbox', kind: 'string' },
  ...actionLimitSettings(''),
  { path: 'executionRoots', flag: 'execution-root', kind: 'pairs' },
  { path: 'defaultTimeout', flag: 'default-timeout', kind: 'string' },
  { path: 'drainTimeout', flag: 'drain-timeout', kind: 'string' },
  { path: 'httpListen', flag: 'http-listen', kind: 'string' },
  { path: 'httpTls.cert', flag: 'http-tls-cert', kind: 'string' },
  { path: 'httpTls.key', flag: 'http-tls-key', kind: 'string' },
  { path: 'logFormat', flag: 'log-format', kind: 'string' },
  { path: 'tls.ca', flag: 'tls-ca', kind: 'string' },
  { path: 'tls.cert', flag: 'tls-cert', kind: 'string' },
  { path: 'tls.key', flag: 'tls-key', kind: 'string' },
  { path: 'tokenFile', flag: 'token-file', kind: 'string' },
];

/** Flags, then the --config file for what the flags leave unset, then the defaults. */
export function resolveWorkerArgs(argv: readonly string[]): ParsedArgs {
  const args = parseArgs(argv, WORKER_FLAGS, { withDefaults: false });
  const file = flag(args, 'config');
  if (file) applyConfigFile(readConfigFile(file), args, WORKER_SETTINGS);
  applyFlagDefaults(args, WORKER_FLAGS);
  return args;
}

export async function workerCommand(argv: readonly string[]): Promise<void> {
  const args = resolveWorkerArgs(argv);
  if (flag(args, 'help')) {
    console.log(usage('worker [flags]', 'Runs actions for a Granary farm (Remote Workers API bot).', WORKER_FLAGS));
    return;
  }
  const httpListen = flag(args, 'http-listen') as string;
  if (httpListen === 'auto') throw new UsageError('--http-listen of a worker must be HOST:PORT or none');
  validateHttpListen(httpListen);
  const httpCertificateFile = flag(args, 'http-tls-cert');
  const httpKeyFile = flag(args, 'http-tls-key');
  if ((httpCertificateFile === undefined) !== (httpKeyFile === undefined))
    throw new UsageError('--http-tls-cert and --http-tls-key go together');
  if (httpCertificateFile !== undefined && httpListen === 'none')
    throw new UsageError('--http-tls-cert needs --http-listen HOST:PORT');
  const logFormat = parseLogFormat(flag(args, 'log-format') as string);
  if (!logFormat) throw new UsageError('--log-format must be text or json');
  configureLogging({ format: logFormat, sink: { write: (line) => process.stderr.write(line) } });
  const logger = log.component('granary worker');
  const slots = Number(flag(args, 'slots'));
  if (!Number.isSafeInteger(slots) || slots < 1) throw new UsageError('--slots must be a positive integer');
  const sandbox = flag(args, 'sandbox') as SandboxChoice;
  if (!['auto', 'bubblewrap', 'none'].includes(sandbox))
    throw new UsageError('--sandbox must be auto, bubblewrap or none');
  const explicit = parsePlatform(args.flags.get('platform') ?? []);
  // Explicit properties replace the host defaults of the same name.
  const platform = [...hostPlatform().filter((p) => !explicit.some((e) => e.name === p.name)), ...explicit];
  const drainTimeoutMs = parseDuration(flag(args, 'drain-timeout') as string);
  let actionUser: ActionUser | undefined;
  try {
    actionUser = actionUserFor(flag(args, 'action-user') as string, process.getuid?.() ?? -1);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const workDirectory = resolve(flag(args, 'work-dir') as string);
  await ensureFlagDirectory(workDirectory, 'work-dir');
  const dial = clientDialOptions(clientSecurityFlags(args));
  const sharedCasDirectory = flag(args, 'shared-cas');
  // The embedded worker of `granary serve` gets its credential in the environment: keep it from actions.
  delete process.env.GRANARY_TOKEN;
  const registry = createMetricsRegistry();
  let worker: RunningWorker | undefined;
  const metrics = workerMetrics(registry, {
    slots,
    busySlots: () => worker?.leaseCount() ?? 0,
    connected: () => worker !== undefined,
    cacheUsage: () => worker?.cacheUsage() ?? { usedBytes: 0, maximumBytes: 0, blobCount: 0 },
  });
  const config: WorkerConfig = {
    log: (message) => logger.info(message.replace(/^granary worker: /, '')),
    onActionFinished: (response) => metrics.actionFinished(response),
    server: flag(args, 'server') as string,
    dial,
    instanceName: flag(args, 'instance') ?? '',
    botId: flag(args, 'bot-id') ?? `${hostname()}-${process.pid}`,
    slots,
    platform,
    actionUser,
    limitMaxima: parseActionLimitFlags(args),
    workDirectory,
    cacheSizeBytes: parseSize(flag(args, 'cache-size') as string),
    sharedCasDirectory: sharedCasDirectory === undefined ? undefined : resolve(sharedCasDirectory),
    // 0, its default, says no blob is kept elsewhere.
    sharedCasSmallBlobBytes: parseSizeFlag(args, 'shared-cas-small-blobs', { allowZero: true }),
    sandbox,
    defaultTimeoutMs: parseDuration(flag(args, 'default-timeout') as string),
    executionRoots: parseExecutionRoots(args.flags.get('execution-root') ?? []),
  };
  let http: RunningHttpServer | undefined;
  let stopReason: string | undefined;
  let resolveStopped = () => {};
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  const beginStop = (running: RunningWorker, reason: string) => {
    logger.info(
      `${reason}: stopping; ${running.leaseCount()} running action(s) have up to ` +
        `${drainTimeoutMs} ms to finish, the rest go back to the farm (signal again to stop at once)`,
    );
    running
      .stop(drainTimeoutMs)
      .then(() => http?.close())
      .then(resolveStopped, (error: unknown) => {
        logger.error(`error while stopping: ${errorMessage(error)}`);
        resolveStopped();
      });
  };
  // Listening starts before the start-up (which may take seconds), so that neither a
  // signal nor the parent's request or death goes unnoticed meanwhile.
  const stopListening = onShutdownRequests(
    {
      graceful: (reason) => {
        stopReason = reason;
        if (worker) beginStop(worker, reason);
      },
      immediate: (reason, exitCode) => {
        logger.info(`${reason}: stopping at once`);
        worker?.abort();
        process.exit(exitCode);
      },
    },
    { followParent: true },
  );
  try {
    worker = await startWorker(config);
  } catch (error) {
    stopListening();
    throw inTermsOfDirectoryFlag(error, workDirectory, 'work-dir');
  }
  const running = worker;
  let httpTls: ReloadingServerTls | undefined;
  try {
    if (httpCertificateFile !== undefined && httpKeyFile !== undefined) {
      httpTls = await ReloadingServerTls.open(
        { certificateFile: httpCertificateFile, keyFile: httpKeyFile },
        { log: (line) => logger.info(line) },
      ).catch((error: unknown) => {
        throw new UsageError((error as Error).message);
      });
    }
    const files = httpTls;
    http = await startOperatorPort({
      listen: httpListen,
      registry,
      readiness: () => ({ ready: true, details: { slots, busy: running.leaseCount() } }),
      title: 'granary worker',
      tls: files && { ...files.current(), subscribe: (listener) => files.subscribe(listener) },
      log: logger,
    });
  } catch (error) {
    httpTls?.close();
    stopListening();
    await running.stop();
    throw error;
  }
  if (http) logger.info(`metrics and health on ${http.url} (/metrics, /healthz, /readyz)`);
  if (stopReason !== undefined) beginStop(worker, stopReason);
  await stopped;
  httpTls?.close();
  stopListening();
  logger.info('stopped');
}

function parseExecutionRoots(values: readonly string[]): Record<string, string> {
  const roots: Record<string, string> = {};
  for (const text of values) {
    const eq = text.indexOf('=');
    if (eq <= 0 || eq === text.length - 1) throw new UsageError(`--execution-root expects NAME=DIR, got "${text}"`);
    const directory = resolve(text.slice(eq + 1));
    if (!existsSync(join(directory, 'usr')))
      throw new UsageError(`--execution-root ${text}: ${directory}/usr does not exist`);
    roots[text.slice(0, eq)] = directory;
  }
  return roots;
}
