/**
 * `granary serve`: the all-in-one farm on local disk, or, with --database, one
 * frontend of a farm whose shared state is in PostgreSQL; with its operator's HTTP
 * port and its embedded worker: a supervised child process (see embeddedWorker.ts)
 * started again when it dies, asked to drain when the farm stops, and gone on its
 * own when the farm dies.
 */

import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_MAXIMUM_REDIRECTS } from '../asset/downloader.js';
import { FetchPolicy } from '../asset/fetchPolicy.js';
import type { InternalCredential } from '../auth/callerAuthenticator.js';
import { TOKEN_ENVIRONMENT_VARIABLE } from '../client/tokenSource.js';
import { backgroundContext } from '../context/requestContext.js';
import { parsePlatformMatchRules } from '../execution/platformMatch.js';
import { httpAuthenticatorOf, mayViewInstance, refusalOfToken } from '../http/httpAccessPolicy.js';
import { verifiedPeerCertificateOf } from '../http/httpServer.js';
import { errorMessage, type LogFormat, log } from '../observability/log.js';
import { type RunningFarm, startFarm } from '../server/farm.js';
import { farmObservability } from '../server/farmObservability.js';
import { MAXIMUM_DOWNLOAD_BYTES } from '../server/storageServer.js';
import { linkableDisk } from '../storage/storageConfig.js';
import { WebUi } from '../ui/webUi.js';
import { formatSize } from '../util/size.js';
import { ACTION_LIMIT_FLAGS, actionLimitArguments, parseActionLimitFlags } from './actionLimitFlags.js';
import { type FlagSpec, flag, type ParsedArgs, parseDuration, parseSizeFlag, UsageError, usage } from './args.js';
import { ensureFlagDirectory, inTermsOfDirectoryFlag } from './directoryFlag.js';
import { EMBEDDED_BOT_ID, EmbeddedWorker } from './embeddedWorker.js';
import { inTermsOfListenFlag } from './listenFlag.js';
import { HTTP_LISTEN_HELP, startOperatorPort } from './operatorPort.js';
import { embeddedWorkerCacheBytes, resolveServeConfiguration } from './serveConfig.js';
import { parseServerFlags } from './serverFlags.js';
import { openServerSecurity, SERVER_SECURITY_FLAGS } from './serverSecurity.js';
import { onShutdownRequests } from './shutdownRequests.js';
import { DEFAULT_DRAIN_TIMEOUT } from './worker.js';

/** The flags of `granary serve` (each also a setting of its configuration file; see serveConfig.ts). */
export const SERVE_FLAGS: Record<string, FlagSpec> = {
  config: {
    type: 'string',
    help: 'YAML file of settings and storage graphs (docs/configuration.md); flags override it',
  },
  listen: { type: 'string', default: '127.0.0.1:8980', help: 'address to listen on, HOST:PORT' },
  'http-listen': { type: 'string', default: 'auto', help: HTTP_LISTEN_HELP },
  'log-format': { type: 'string', default: 'text', help: 'text (for people) or json (one object per line)' },
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
  ...ACTION_LIMIT_FLAGS,
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
    help: 'grpc://HOST:PORT of a `granary storage` node (repeatable): keep the CAS on these nodes, shared by the frontends of a farm, instead of under --data',
  },
  replicas: {
    type: 'string',
    help: 'with --storage-node: copies of each blob, on that many nodes (default 2 with two or more nodes)',
  },
  'storage-node-tls-ca': {
    type: 'string',
    help: "with --storage-node grpcs://...: CA certificate (PEM) that signed the nodes' certificates",
  },
  'storage-node-tls-cert': {
    type: 'string',
    help: 'with --storage-node: client certificate (PEM) shown to nodes that require one (granary storage --tls-client-ca)',
  },
  'storage-node-tls-key': { type: 'string', help: 'private key (PEM) of --storage-node-tls-cert' },
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
  const { args, storage } = resolveServeConfiguration(argv, SERVE_FLAGS);
  if (flag(args, 'help')) {
    console.log(usage('serve [flags]', 'Runs the all-in-one Granary farm on this machine.', SERVE_FLAGS));
    return;
  }
  const { listen, httpListen, logFormat } = parseServerFlags(args);
  const data = resolve(flag(args, 'data') as string);
  const maximumSizeBytes = parseSizeFlag(args, 'max-size');
  const retentionGraceMs = parseDuration(flag(args, 'retention-grace') as string);
  await ensureFlagDirectory(data, 'data');
  const drainTimeoutMs = parseDuration(flag(args, 'worker-drain-timeout') as string);
  parseActionLimitFlags(args); // Checked here, so that a bad value stops serve rather than each worker start.
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
  const workerCredential = embeddedWorkerCredential();
  const security = await openServerSecurity(args, {
    internal: [workerCredential],
    log: (line) => log.info(line),
  });
  const secured = security.policy.enforced || security.tls !== undefined;
  // A secured farm's embedded worker reaches it on a private socket (no TLS to verify, no client certificate).
  const privateDirectory = secured ? await mkdtemp(join(tmpdir(), 'granary-serve-')) : undefined;
  const removePrivateDirectory = () => {
    if (privateDirectory) rmSync(privateDirectory, { recursive: true, force: true });
  };
  const workerSocket = privateDirectory && `unix:${join(privateDirectory, 'worker.sock')}`;
  const observability = farmObservability();
  const webUi = new WebUi();
  let server: RunningFarm;
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
      hooks: {
        ...security.hooks,
        interceptors: [...(security.hooks?.interceptors ?? []), ...observability.callInterceptors],
      },
      observers: {
        ...observability.storageObservers,
        actionCacheLookup: (hit) => {
          observability.storageObservers.actionCacheLookup?.(hit);
          webUi.history.countLookup(hit);
        },
      },
      farmObservers: observability.farmObservers,
      buildEvents: webUi.invocations,
      additionalListeners: workerSocket ? [{ address: workerSocket }] : [],
      cas: storage.cas,
      actionCache: storage.actionCache,
      asset: storage.assets,
      assetRetentionMs: parseDuration(flag(args, 'asset-retention') as string),
      retentionGraceMs,
    });
  } catch (error) {
    security.close();
    removePrivateDirectory();
    throw inTermsOfDirectoryFlag(inTermsOfListenFlag(error, listen), data, 'data');
  }
  observability.attach(server);
  webUi.attach(server);
  let stopping = false;
  const httpAuthenticator = httpAuthenticatorOf(security.policy, {
    clientCertificateRequired: security.tls?.clientCertificateAuthorityPem !== undefined,
  });
  const http = await startOperatorPort({
    listen: httpListen,
    grpcAddress: server.address,
    registry: observability.registry,
    readiness: () => farmReadiness(server, stopping),
    title: `granary serve on ${server.address}`,
    routes: webUi.routes(
      {
        login: security.policy.enforced,
        refusalOfToken: (token, request) =>
          refusalOfToken(httpAuthenticator, token, verifiedPeerCertificateOf(request)),
        secureCookies: security.tls !== undefined,
      },
      { mayView: (exchange, instanceName) => mayViewInstance(exchange.principal, instanceName) },
    ),
    authenticator: httpAuthenticator,
    loginPath: security.policy.enforced ? '/login' : undefined,
    tls: security.tls,
    log,
  }).catch(async (error: unknown) => {
    await server.close();
    security.close();
    removePrivateDirectory();
    throw error;
  });
  const url = `${security.tls ? 'grpcs' : 'grpc'}://${server.address}`;
  const servingFields = {
    event: 'serving',
    address: server.address,
    http: http?.url,
    data,
    maximum_bytes: maximumSizeBytes,
  };
  log.info(`serving on ${server.address} (data in ${data}, up to ${formatSize(maximumSizeBytes)})`, servingFields, {
    fieldsInText: false,
  });
  if (http) {
    log.info(`metrics and health on ${http.url} (/metrics, /healthz, /readyz)`);
    log.info(`web UI on ${http.url}/`);
  }
  if (databaseUrl) log.info(`farm state in ${describeDatabase(databaseUrl)}, shared by every frontend using it`);
  if ('replicated' in storage.cas) {
    const { nodes, replicas } = storage.cas.replicated;
    log.info(`CAS on ${nodes.length} storage node(s), ${replicas} cop(ies) of each blob`);
  }
  const { info, warnings } = security.describe(listen);
  for (const line of info) log.info(line);
  for (const line of warnings) log.warn(`WARNING: ${line}`);
  const clientFlags = [
    ...(security.tls ? ['--tls_certificate=CA.pem'] : []),
    ...(security.policy.enforced ? ['--remote_header=Authorization="Bearer $TOKEN"'] : []),
  ].join(' ');
  printBazelHints(logFormat, url, clientFlags === '' ? '' : ` ${clientFlags}`);
  // With the CAS on this machine, the worker links inputs from it and its own cache is a slice of --max-size.
  // Blobs the CAS routes to its segment files are never there as files: the worker does not look for them.
  const sharedCas = linkableDisk(storage.cas);
  const workerCacheArguments = sharedCas
    ? [
        '--shared-cas',
        sharedCas.directory,
        '--shared-cas-small-blobs',
        String(sharedCas.smallBlobBytes),
        '--cache-size',
        String(embeddedWorkerCacheBytes(maximumSizeBytes)),
      ]
    : [];
  const worker =
    workers > 0
      ? new EmbeddedWorker({
          server: workerSocket ?? url,
          slots: workers,
          workDirectory: join(data, 'worker'),
          sandbox: flag(args, 'sandbox') as string,
          platform: args.flags.get('worker-platform') ?? [],
          drainTimeoutMs,
          extraArguments: ['--log-format', logFormat, ...actionLimitArguments(args), ...workerCacheArguments],
          // The token goes in the environment, never on the command line (which every local user can read).
          environment: security.policy.enforced ? { [TOKEN_ENVIRONMENT_VARIABLE]: workerCredential.token } : undefined,
          log,
          // Its actions go back to the queue now rather than when its session would expire.
          onExit: () => void server.forgetBot(EMBEDDED_BOT_ID),
          onRestart: () => observability.metrics.embeddedWorkerRestarted(),
        })
      : undefined;
  worker?.start();
  const onHangup = () => {
    void security.reload().then((lines) => {
      for (const line of lines) log.warn(`SIGHUP: ${line}`);
    });
  };
  process.on('SIGHUP', onHangup);
  log.info('press Ctrl-C to stop');
  let stopListening = () => {};
  await new Promise<void>((resolveStop) => {
    stopListening = onShutdownRequests({
      graceful: (reason) => {
        stopping = true;
        log.info(`${reason} received, finishing in-flight work (again to stop at once)`);
        (worker?.stop() ?? Promise.resolve())
          .then(() => server.close())
          .then(() => http?.close())
          .then(() => webUi.close())
          .then(() => {
            security.close();
            removePrivateDirectory();
          })
          .then(resolveStop, (error: unknown) => {
            log.error(`error while stopping: ${errorMessage(error)}`);
            resolveStop();
          });
      },
      // Like a crash, which the storage and the scheduler state survive; the embedded
      // worker sees its channel close and stops at once too.
      immediate: (reason, exitCode) => {
        log.info(`${reason}: stopping at once`);
        removePrivateDirectory();
        process.exit(exitCode);
      },
    });
  });
  stopListening();
  process.off('SIGHUP', onHangup);
  log.info('stopped');
}

/** A positive integer flag, or undefined when not given. */
function optionalCount(args: ParsedArgs, name: string): number | undefined {
  const text = flag(args, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`--${name} must be a positive integer, got "${text}"`);
  }
  return value;
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

/** The flags to give Bazel; in text mode as the indented block people copy from. */
function printBazelHints(format: LogFormat, url: string, extra: string): void {
  const hints: [string, string][] = [
    ['remote cache', `--remote_cache=${url}${extra}`],
    ['remote execution', `--remote_executor=${url} --spawn_strategy=remote${extra}`],
    ['downloads', `--experimental_remote_downloader=${url} --remote_cache=${url}${extra}`],
  ];
  if (format === 'json') {
    log.info('use it from Bazel', { event: 'bazel_flags', ...Object.fromEntries(hints) });
    return;
  }
  log.info('use it from Bazel with:');
  for (const [what, flags] of hints) process.stdout.write(`  ${`${what}:`.padEnd(18)}${flags}\n`);
}

/**
 * Ready as the gRPC health of the whole server says (serving, not stopping); the
 * body also tells whether execution can take work and how many workers are connected.
 */
async function farmReadiness(farm: RunningFarm, stopping: boolean) {
  const serving = !stopping && (await farm.health('')) === 'SERVING';
  const workers = (await farm.admin.workers(backgroundContext())).filter((w) => w.goneAtMs === undefined);
  const details = { execution: await farm.health(EXECUTION_SERVICE), workers: workers.length };
  return serving ? { ready: true, details } : { ready: false, reason: 'shutting down', details };
}

const EXECUTION_SERVICE = 'build.bazel.remote.execution.v2.Execution';
