/**
 * Granary's HTTP port (`--http-listen`): a node:http server, or node:https with
 * the gRPC listener's certificate, with a route table, for what operators and
 * their tools read over HTTP: Prometheus metrics, health probes, and the web
 * UI's pages and JSON admin endpoints, which add their own routes. Every request
 * passes one authentication hook first (the same kind of function as the gRPC
 * edge's authenticator: headers and TLS peer in, a Principal out), and a route
 * that names a scope is refused to callers without it. Probes (/healthz,
 * /readyz) name none, so a load balancer needs no token.
 *
 * With a client CA the TLS handshake asks for a client certificate but does not
 * require one (a load balancer's probe has none); a certificate that does not
 * chain to the CA is never taken as an identity, and the access policy decides
 * what a caller without one may reach (see httpAccessPolicy).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Principal, Scope } from '../context/requestContext.js';
import { ANONYMOUS_PRINCIPAL } from '../grpc/authentication.js';
import type { ServerTlsOptions } from '../grpc/server.js';
import { log as defaultLog, errorMessage, type Logger } from '../observability/log.js';
import { secureContextOptionsOf } from '../tls/serverTlsFiles.js';

/** What an HTTP authenticator may look at. */
export interface HttpAuthenticationRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  /** The peer's address, `HOST:PORT`. */
  readonly peer: string;
  /** The client certificate, only when the TLS handshake verified it against the client CA. */
  readonly peerCertificate: PeerCertificate | undefined;
  /** What the route needs: its scope, or `public` for a route that names none. */
  readonly requirement: Scope | 'public';
}

/**
 * Establishes who is calling; throws HttpError(401) for missing or bad
 * credentials. The default lets everyone in as the anonymous principal.
 */
export type HttpAuthenticator = (request: HttpAuthenticationRequest) => Principal | Promise<Principal>;

/** A request as a route handler sees it. */
export interface HttpExchange {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  readonly url: URL;
  /** Path segments after a prefix route's prefix (empty for exact routes). */
  readonly rest: string;
  readonly principal: Principal;
}

export interface HttpRoute {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';
  /** An exact path (`/metrics`) or, ending in `/*`, a prefix (`/ui/*`). */
  readonly path: string;
  /** Callers must hold this scope; public when absent. */
  readonly scope?: Scope;
  /** One line for the index page. */
  readonly description?: string;
  handle(exchange: HttpExchange): Promise<void> | void;
}

/** An error with the HTTP status to answer. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export interface HttpServerOptions {
  /** HOST:PORT; port 0 picks a free port. */
  readonly listen: string;
  readonly routes?: readonly HttpRoute[];
  /** Who is calling; everyone is the anonymous principal (allowed everything) when absent. */
  readonly authenticator?: HttpAuthenticator;
  /** Where a browser refused for want of credentials is sent (a login form); a plain 401 when absent. */
  readonly loginPath?: string;
  /**
   * Serve HTTPS with this certificate, following its reloads; with a client CA,
   * ask clients for a certificate (without requiring one).
   */
  readonly tls?: ServerTlsOptions;
  readonly log?: Logger;
}

/** A listening HTTP server; more routes may be added while it runs. */
export interface RunningHttpServer {
  /** HOST:PORT as bound (with the port picked for port 0). */
  readonly address: string;
  readonly url: string;
  addRoute(route: HttpRoute): void;
  routes(): readonly HttpRoute[];
  close(): Promise<void>;
}

/** Starts serving; rejects with a message naming the address when it cannot listen. */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const { host, port } = parseHostPort(options.listen);
  const table: HttpRoute[] = [...(options.routes ?? [])];
  const logger = options.log ?? defaultLog;
  const authenticator = options.authenticator ?? (() => ANONYMOUS_PRINCIPAL);
  const handle = (request: IncomingMessage, response: ServerResponse) => {
    void dispatch(table, authenticator, options.loginPath, request, response).catch((error: unknown) => {
      logger.error('HTTP request failed', { path: request.url, error: errorMessage(error) });
      if (!response.headersSent) sendText(response, 500, 'internal error\n');
      else response.destroy();
    });
  };
  const tls = options.tls;
  const server: Server | HttpsServer = tls
    ? createHttpsServer(
        // Asked for, not required: probes come without one, and the access policy refuses the rest.
        {
          ...secureContextOptionsOf(tls),
          requestCert: tls.clientCertificateAuthorityPem !== undefined,
          rejectUnauthorized: false,
        },
        handle,
      )
    : createServer(handle);
  // A renewed certificate (or client CA) applies to the next connections, as on the gRPC listener.
  const unsubscribe = tls?.subscribe?.((material) =>
    (server as HttpsServer).setSecureContext(secureContextOptionsOf(material)),
  );
  // Idle keep-alive connections must not hold up a stop.
  server.keepAliveTimeout = 5000;
  try {
    await listen(server, host, port);
  } catch (error) {
    unsubscribe?.();
    throw error;
  }
  const bound = server.address() as AddressInfo;
  const address = `${host.includes(':') ? `[${host}]` : host}:${bound.port}`;
  let closing: Promise<void> | undefined;
  return {
    address,
    url: `${tls ? 'https' : 'http'}://${address}`,
    addRoute: (route) => {
      table.push(route);
    },
    routes: () => [...table],
    close: () => {
      unsubscribe?.();
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Scrapes and probes are short; whatever still runs after a moment is cut.
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
      return closing;
    },
  };
}

async function dispatch(
  table: readonly HttpRoute[],
  authenticator: HttpAuthenticator,
  loginPath: string | undefined,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://granary.invalid');
  const method = request.method === 'HEAD' ? 'GET' : request.method;
  const matches = table
    .map((route) => ({ route, rest: matchPath(route.path, url.pathname) }))
    .filter((m): m is { route: HttpRoute; rest: string } => m.rest !== undefined);
  if (matches.length === 0) {
    sendText(response, 404, `not found: ${url.pathname}\n`);
    return;
  }
  // Exact routes win over prefixes; among prefixes the longest wins.
  matches.sort((a, b) => b.route.path.length - a.route.path.length);
  const match = matches.find((m) => m.route.method === method);
  if (!match) {
    response.setHeader('Allow', [...new Set(matches.map((m) => m.route.method))].join(', '));
    sendText(response, 405, `method ${request.method} not allowed on ${url.pathname}\n`);
    return;
  }
  let principal: Principal;
  try {
    principal = await authenticator(authenticationRequestOf(request, url, match.route.scope ?? 'public'));
    if (match.route.scope && !principal.scopes.has(match.route.scope)) {
      throw new HttpError(403, `${principal.name} lacks the ${match.route.scope} scope this needs`);
    }
  } catch (error) {
    const statusCode = error instanceof HttpError ? error.statusCode : 401;
    if (statusCode === 401) {
      // A person in a browser is shown the login form; tools get the challenge.
      if (loginPath && method === 'GET' && /text\/html/.test(request.headers.accept ?? '')) {
        response.writeHead(303, { Location: loginPath, 'Cache-Control': 'no-store' });
        response.end();
        return;
      }
      response.setHeader('WWW-Authenticate', 'Bearer realm="granary"');
    }
    sendText(response, statusCode, `${errorMessage(error)}\n`);
    return;
  }
  try {
    await match.route.handle({ request, response, url, rest: match.rest, principal });
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    if (response.headersSent) response.destroy();
    else sendText(response, error.statusCode, `${error.message}\n`);
  }
}

function matchPath(pattern: string, path: string): string | undefined {
  if (pattern.endsWith('/*')) {
    const prefix = pattern.slice(0, -1);
    if (path.startsWith(prefix)) return path.slice(prefix.length);
    return path === pattern.slice(0, -2) ? '' : undefined;
  }
  return path === pattern ? '' : undefined;
}

function authenticationRequestOf(
  request: IncomingMessage,
  url: URL,
  requirement: Scope | 'public',
): HttpAuthenticationRequest {
  return {
    method: request.method ?? 'GET',
    path: url.pathname,
    headers: request.headers,
    peer: `${request.socket.remoteAddress ?? 'unknown'}:${request.socket.remotePort ?? 0}`,
    peerCertificate: verifiedPeerCertificateOf(request),
    requirement,
  };
}

/** The client certificate of a request's connection, when the TLS handshake verified it against the client CA. */
export function verifiedPeerCertificateOf(request: IncomingMessage): PeerCertificate | undefined {
  const socket = request.socket as Partial<TLSSocket>;
  // Clients are not required to present a certificate, so one that failed verification still gets here.
  if (socket.authorized !== true) return undefined;
  const certificate = socket.getPeerCertificate?.();
  return certificate && Object.keys(certificate).length > 0 ? certificate : undefined;
}

/** Answers with a plain-text body. */
export function sendText(response: ServerResponse, statusCode: number, body: string, contentType = 'text/plain'): void {
  response.writeHead(statusCode, {
    'Content-Type': `${contentType}; charset=utf-8`,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

/** Answers with a JSON body (for the admin endpoints). */
export function sendJson(response: ServerResponse, statusCode: number, value: unknown): void {
  sendText(response, statusCode, `${JSON.stringify(value, null, 2)}\n`, 'application/json');
}

/** Splits HOST:PORT (IPv6 hosts in brackets); throws with the flag-friendly wording otherwise. */
export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || !Number.isSafeInteger(port) || port > 65535) throw new Error(`expected HOST:PORT, got "${text}"`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

function listen(server: Server | HttpsServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      const where = `${host}:${port}`;
      if (error.code === 'EADDRINUSE') reject(new Error(`HTTP port ${where} is already in use`));
      else if (error.code === 'EACCES') reject(new Error(`no permission to listen on ${where}`));
      else reject(new Error(`cannot listen on ${where}: ${error.message}`));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}
