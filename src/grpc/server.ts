/**
 * The one way Granary serves gRPC: a server factory that binds its listeners
 * (HOST:PORT or unix:PATH, plain text or TLS), applies the HTTP/2 tuning and
 * message limits, and puts every call through the edge: observation for
 * metrics and logs (innermost, so refused calls are counted), authentication,
 * then the handlers of handlers.ts, which build the request context and ask the
 * authorizer. The storage server and the farm build their servers here.
 */
import { experimental, Server, ServerCredentials, type ServiceDefinition, setLogger } from '@grpc/grpc-js';
import type { ServerTlsMaterial } from '../tls/serverTlsFiles.js';
import { type Authenticator, anonymousAuthenticator, authenticationInterceptor } from './authentication.js';
import { type Authorizer, allowEverything, methodOfPath } from './authorization.js';
import { type CallInterceptor, countMessageBytes, observationInterceptor } from './callObservation.js';
import { tuneHttp2Server } from './tuning.js';

/** Largest gRPC message a server accepts or sends unless told otherwise. */
export const DEFAULT_MAXIMUM_MESSAGE_BYTES = 16 * 1024 * 1024;

/** How long close() lets calls in flight finish before cancelling them. */
const DEFAULT_SHUTDOWN_GRACE_MS = 5000;

/**
 * A listener's certificate (PEM), and the CA that client certificates must chain
 * to for mTLS (set: every client must present one). With `subscribe`, new
 * material (renewed certificates, see ReloadingServerTls) replaces it for new
 * connections; whether a client CA is required cannot change.
 */
export interface ServerTlsOptions extends ServerTlsMaterial {
  readonly subscribe?: (listener: (material: ServerTlsMaterial) => void) => () => void;
}

export interface ListenerOptions {
  /** HOST:PORT (port 0 picks a free port) or unix:PATH. */
  readonly address: string;
  /** Serve TLS with this certificate; plain text when absent. */
  readonly tls?: ServerTlsOptions;
}

export interface GrpcServerOptions {
  readonly listeners: readonly ListenerOptions[];
  /** Who is calling; every caller is ANONYMOUS_PRINCIPAL (allowed everything) when absent. */
  readonly authenticator?: Authenticator;
  /** What a caller may do, per method and instance; everything when absent. */
  readonly authorizer?: Authorizer;
  /** Told about every finished call (metrics, access logs). */
  readonly interceptors?: readonly CallInterceptor[];
  readonly maximumMessageBytes?: number;
}

/** A bound listener: the address clients dial (with the port picked for port 0). */
export interface BoundListener {
  readonly address: string;
  readonly port: number;
}

/** A gRPC server whose calls all pass through Granary's edge. */
export interface GrpcServer {
  addService<Implementation>(definition: ServiceDefinition<Implementation>, implementation: Implementation): void;
  /** The fully qualified names of the services added so far (for reflection and health). */
  serviceNames(): string[];
  /** Binds every listener, in order; rejects (leaving nothing bound) when one fails. */
  listen(): Promise<BoundListener[]>;
  /** Lets calls in flight finish for up to `graceMs`, then cancels the rest. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

/** Builds a server; add services, then listen(). */
export function createGrpcServer(options: GrpcServerOptions): GrpcServer {
  const maximumMessageBytes = options.maximumMessageBytes ?? DEFAULT_MAXIMUM_MESSAGE_BYTES;
  const server = new Server({
    'grpc.max_receive_message_length': maximumMessageBytes,
    'grpc.max_send_message_length': maximumMessageBytes,
    interceptors: [
      observationInterceptor(options.interceptors ?? []),
      authenticationInterceptor(options.authenticator ?? anonymousAuthenticator, options.authorizer ?? allowEverything),
    ],
  });
  tuneHttp2Server(server);
  const observing = (options.interceptors?.length ?? 0) > 0;
  let closing: Promise<void> | undefined;
  const names = new Set<string>();
  return {
    addService: (definition, implementation) => {
      server.addService(observing ? countMessageBytes(definition) : definition, implementation as never);
      const first = Object.values(definition)[0] as { path?: string } | undefined;
      if (first?.path) names.add(methodOfPath(first.path).service);
    },
    serviceNames: () => [...names],
    listen: async () => {
      const bound: BoundListener[] = [];
      try {
        for (const listener of options.listeners) bound.push(await bind(server, listener));
      } catch (error) {
        for (const done of bound) server.unbind(done.address);
        throw error;
      }
      return bound;
    },
    close: (graceMs = DEFAULT_SHUTDOWN_GRACE_MS) => {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
}

/**
 * Hands a listener's TLS material to grpc-js, and every later version of it:
 * grpc-js's certificate-provider credentials rebuild the secure context of the
 * listener's HTTP/2 server whenever a provider reports new certificates.
 * (grpc-js exports this under `experimental`; it is how its own file watcher works.)
 */
class MaterialProvider implements experimental.CertificateProvider {
  private readonly identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();
  private unsubscribe: (() => void) | undefined;
  private material: ServerTlsMaterial;

  constructor(private readonly tls: ServerTlsOptions) {
    this.material = tls;
  }

  private identity(): experimental.IdentityCertificateUpdate {
    return { certificate: this.material.certificateChainPem, privateKey: this.material.privateKeyPem };
  }

  private ca(): experimental.CaCertificateUpdate | null {
    const pem = this.material.clientCertificateAuthorityPem;
    return pem ? { caCertificate: pem } : null;
  }

  private watch(): void {
    if (this.unsubscribe || !this.tls.subscribe) return;
    this.unsubscribe = this.tls.subscribe((material) => {
      this.material = material;
      for (const listener of this.identityListeners) listener(this.identity());
      for (const listener of this.caListeners) listener(this.ca());
    });
  }

  private unwatchWhenUnused(): void {
    if (this.identityListeners.size + this.caListeners.size > 0) return;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  // grpc-js registers its listeners before its own watcher: answer on the next tick, as its file watcher does.
  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    this.watch();
    process.nextTick(() => listener(this.identity()));
  }

  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
    this.unwatchWhenUnused();
  }

  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    this.watch();
    process.nextTick(() => listener(this.ca()));
  }

  removeCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
    this.unwatchWhenUnused();
  }
}

function credentialsOf(tls: ServerTlsOptions | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  const provider = new MaterialProvider(tls);
  const mutual = tls.clientCertificateAuthorityPem !== undefined;
  // grpc-js takes the identity provider first and the (optional) CA provider second.
  return experimental.createCertificateProviderServerCredentials(provider, mutual ? provider : null, mutual);
}

/** Why a listener could not be bound: its address is taken, not ours to take, or something else. */
export type ListenFailure = 'in-use' | 'permission' | 'other';

/** A listener that could not be bound, said plainly (grpc-js's own wording is about "resolved addresses"). */
export class ListenError extends Error {
  constructor(
    readonly address: string,
    readonly failure: ListenFailure,
    detail: string,
  ) {
    super(
      failure === 'in-use'
        ? `${address} is already in use`
        : failure === 'permission'
          ? `no permission to listen on ${address}`
          : `cannot listen on ${address}: ${detail}`,
    );
  }
}

/** grpc-js's bind error carries the system's (`listen EADDRINUSE: address already in use ...`). */
function listenFailureOf(message: string): ListenFailure {
  if (/EADDRINUSE/.test(message)) return 'in-use';
  if (/EACCES|EPERM/.test(message)) return 'permission';
  return 'other';
}

/** The first line grpc-js logs itself for a failed bind, which ListenError reports better. */
const BIND_FAILURE_LOG = 'No address added out of total';
let bindFailureLogQuiet = false;

/**
 * grpc-js prints "E No address added out of total 1 resolved" on stderr before it hands
 * the failure to bindAsync's callback. Its other messages still go to stderr as grpc-js
 * prints them (a logger it has not been given writes `E message`).
 */
function quietBindFailureLog(): void {
  if (bindFailureLogQuiet) return;
  bindFailureLogQuiet = true;
  setLogger({
    error: (message?: unknown, ...rest: unknown[]) => {
      if (!String(message).startsWith(BIND_FAILURE_LOG)) console.error(`E ${message}`, ...rest);
    },
    info: (message?: unknown, ...rest: unknown[]) => console.error(`I ${message}`, ...rest),
    debug: (message?: unknown, ...rest: unknown[]) => console.error(`D ${message}`, ...rest),
  });
}

function bind(server: Server, listener: ListenerOptions): Promise<BoundListener> {
  quietBindFailureLog();
  return new Promise((resolve, reject) => {
    server.bindAsync(listener.address, credentialsOf(listener.tls), (error, port) => {
      if (error) {
        const detail = /errors: \[(.*)\]$/.exec(error.message)?.[1] ?? error.message;
        reject(new ListenError(listener.address, listenFailureOf(error.message), detail));
        return;
      }
      if (listener.address.startsWith('unix:')) {
        resolve({ address: listener.address, port });
        return;
      }
      const host = listener.address.slice(0, listener.address.lastIndexOf(':'));
      resolve({ address: `${host}:${port}`, port });
    });
  });
}
