/**
 * `granary storage`: one storage node of a farm on several machines. It keeps a
 * share of the CAS on its disk and serves it to the farm's frontends (`granary
 * serve --storage-node grpc://HOST:PORT`), which decide which blobs it holds. It
 * has no tokens of its own: run it on the farm's private network, and with
 * --tls-cert/--tls-key/--tls-client-ca only frontends holding a certificate of
 * that CA reach it (`granary serve --storage-node-tls-*`). Like
 * `granary serve`, it logs in text or JSON and, with --http-listen, serves its
 * metrics (its store's size, calls and bytes, evictions; gRPC calls) and health.
 */
import { resolve } from 'node:path';
import { OPEN_ACCESS } from '../auth/accessPolicy.js';
import { httpAuthenticatorOf } from '../http/httpAccessPolicy.js';
import { errorMessage, log } from '../observability/log.js';
import { createMetricsRegistry, grpcCallMetrics } from '../observability/metrics.js';
import { startStorageNode } from '../server/storageNode.js';
import { storageObservability } from '../server/storageObservability.js';
import { formatSize } from '../util/size.js';
import { type FlagSpec, flag, parseArgs, parseSizeFlag, usage } from './args.js';
import { ensureFlagDirectory, inTermsOfDirectoryFlag } from './directoryFlag.js';
import { inTermsOfListenFlag } from './listenFlag.js';
import { HTTP_LISTEN_HELP, startOperatorPort } from './operatorPort.js';
import { parseServerFlags } from './serverFlags.js';
import { listenerTlsOf, openServerTlsFiles, SERVER_TLS_FLAGS } from './serverSecurity.js';
import { onShutdownRequests } from './shutdownRequests.js';

const FLAGS: Record<string, FlagSpec> = {
  listen: { type: 'string', default: '127.0.0.1:8981', help: 'address to serve the frontends on, HOST:PORT' },
  data: { type: 'string', default: './.granary-storage', help: 'directory for the blobs' },
  'max-size': { type: 'string', default: '10GiB', help: 'upper bound on stored blobs (e.g. 500GiB); LRU eviction' },
  'http-listen': { type: 'string', default: 'none', help: HTTP_LISTEN_HELP.replace('the web UI, ', '') },
  'log-format': { type: 'string', default: 'text', help: 'text (for people) or json (one object per line)' },
  ...SERVER_TLS_FLAGS,
  help: { type: 'boolean', help: 'show this help' },
};

export async function storageCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, FLAGS);
  if (flag(args, 'help')) {
    console.log(
      usage(
        'storage [flags]',
        "Serves one storage node's share of a farm's CAS (CAS, ByteStream, Capabilities; health, reflection).",
        FLAGS,
      ),
    );
    return;
  }
  const { listen, httpListen } = parseServerFlags(args);
  const logger = log.component('granary storage');
  const directory = resolve(flag(args, 'data') as string);
  const maximumSizeBytes = parseSizeFlag(args, 'max-size');
  await ensureFlagDirectory(directory, 'data');
  const tlsFiles = await openServerTlsFiles(args, (line) => logger.info(line));
  const tls = tlsFiles && listenerTlsOf(tlsFiles);
  const registry = createMetricsRegistry();
  const storage = storageObservability(registry, logger);
  const node = await startStorageNode({
    listen,
    directory,
    maximumSizeBytes,
    observers: storage.observers,
    interceptors: [grpcCallMetrics(registry)],
    tls,
  }).catch((error: unknown) => {
    tlsFiles?.close();
    throw inTermsOfDirectoryFlag(inTermsOfListenFlag(error, listen), directory, 'data');
  });
  storage.watch(node.store);
  let stopping = false;
  const http = await startOperatorPort({
    listen: httpListen,
    grpcAddress: node.address,
    registry,
    readiness: async () => {
      const details = { ...node.store.usage?.() };
      const serving = !stopping && (await node.health('')) === 'SERVING';
      return serving ? { ready: true, details } : { ready: false, reason: 'shutting down', details };
    },
    title: `granary storage on ${node.address}`,
    log: logger,
    tls,
    // With mTLS, only the probes answer a connection without a certificate of the client CA.
    authenticator:
      tls?.clientCertificateAuthorityPem === undefined
        ? undefined
        : httpAuthenticatorOf(OPEN_ACCESS, { clientCertificateRequired: true }),
  }).catch(async (error: unknown) => {
    tlsFiles?.close();
    await node.close();
    throw error;
  });
  logger.info(
    `serving on ${node.address} (blobs in ${directory}, up to ${formatSize(maximumSizeBytes)})`,
    { event: 'serving', address: node.address, http: http?.url, data: directory, maximum_bytes: maximumSizeBytes },
    { fieldsInText: false },
  );
  if (http) logger.info(`metrics and health on ${http.url} (/metrics, /healthz, /readyz)`);
  if (tlsFiles) {
    const summary = tlsFiles.summary();
    const clientCa = flag(args, 'tls-client-ca');
    logger.info(
      `TLS with ${summary.subject}${clientCa === undefined ? '' : `; callers must present a certificate signed by ${clientCa} (mTLS)`}`,
    );
  } else {
    logger.info('traffic is not encrypted and callers are not authenticated: keep this port on a private network');
  }
  let stopListening = () => {};
  await new Promise<void>((resolveStop) => {
    stopListening = onShutdownRequests({
      graceful: (reason) => {
        stopping = true;
        logger.info(`${reason} received, finishing calls in flight (again to stop at once)`);
        node
          .close()
          .then(() => http?.close())
          .then(() => tlsFiles?.close())
          .then(resolveStop, (error: unknown) => {
            logger.error(`error while stopping: ${errorMessage(error)}`);
            resolveStop();
          });
      },
      // Like a crash, which the disk store survives (blobs are committed by rename).
      immediate: (reason, exitCode) => {
        logger.info(`${reason}: stopping at once`);
        process.exit(exitCode);
      },
    });
  });
  stopListening();
  logger.info('stopped');
}
