/**
 * The `--http-listen` flag of the long-running commands: where the operator's
 * HTTP port (metrics, health, later the web UI) listens. `auto` (serve's default)
 * takes the gRPC port plus one on the same host (8981 beside 8980), a free port
 * when the gRPC port was picked freely or port+1 is taken; `none` serves no HTTP.
 */
import type { Registry } from 'prom-client';
import type { ServerTlsOptions } from '../grpc/server.js';
import {
  type HttpAuthenticator,
  type HttpRoute,
  parseHostPort,
  type RunningHttpServer,
  startHttpServer,
} from '../http/httpServer.js';
import { healthRoutes, indexRoute, metricsRoute, type Readiness } from '../http/operatorRoutes.js';
import type { Logger } from '../observability/log.js';
import { UsageError } from './args.js';

export const HTTP_LISTEN_HELP =
  'HTTP port for the web UI, /metrics, /healthz, /readyz: HOST:PORT, auto (gRPC port + 1) or none';

export interface OperatorPortOptions {
  /** The flag's value. */
  readonly listen: string;
  /** The bound gRPC address, HOST:PORT, for `auto`. */
  readonly grpcAddress?: string;
  readonly registry: Registry;
  readonly readiness: () => Readiness | Promise<Readiness>;
  /** First line of the index page. */
  readonly title: string;
  /** More routes (the web UI's); one at `/` replaces the index page. */
  readonly routes?: readonly HttpRoute[];
  /** Who is calling (the server's access policy); everyone may do everything when absent. */
  readonly authenticator?: HttpAuthenticator;
  /** Where browsers without credentials are sent. */
  readonly loginPath?: string;
  /** Serve HTTPS with the server's certificate (the gRPC listener's, reloaded with it). */
  readonly tls?: ServerTlsOptions;
  readonly log: Logger;
}

/** Checks the flag's shape before anything starts. */
export function validateHttpListen(value: string): void {
  if (value === 'auto' || value === 'none') return;
  try {
    parseHostPort(value);
  } catch {
    throw new UsageError(`--http-listen must be HOST:PORT, auto or none, got "${value}"`);
  }
}

/** Starts the HTTP port, or returns undefined for `none`. */
export async function startOperatorPort(options: OperatorPortOptions): Promise<RunningHttpServer | undefined> {
  if (options.listen === 'none') return undefined;
  const routes = [metricsRoute(options.registry), ...healthRoutes(options.readiness), ...(options.routes ?? [])];
  const start = (listen: string) =>
    startHttpServer({
      listen,
      routes,
      log: options.log,
      authenticator: options.authenticator,
      loginPath: options.loginPath,
      tls: options.tls,
    });
  let server: RunningHttpServer;
  if (options.listen === 'auto') {
    const { host, port } = parseHostPort(options.grpcAddress ?? '127.0.0.1:0');
    const wanted = port === 0 ? 0 : port + 1;
    const address = (p: number) => `${host.includes(':') ? `[${host}]` : host}:${p}`;
    try {
      server = await start(address(wanted));
    } catch (error) {
      if (wanted === 0) throw error;
      server = await start(address(0));
      options.log.warn(`HTTP port ${wanted} is taken; serving HTTP on ${server.address} instead`);
    }
  } else {
    try {
      server = await start(options.listen);
    } catch (error) {
      throw new Error(`--http-listen ${options.listen}: ${(error as Error).message}`);
    }
  }
  if (!routes.some((route) => route.path === '/')) server.addRoute(indexRoute(server, options.title));
  return server;
}
