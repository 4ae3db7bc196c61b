/**
 * The one way Granary dials a gRPC server: parses the server address users
 * write (grpc://, http://, grpcs://, https://, HOST:PORT, unix:PATH), creates
 * the channel credentials (the only place that does: plain text, or TLS with an
 * optional CA and client certificate) and one channel with our HTTP/2 tuning,
 * which every typed client of the connection shares, and the bearer token every
 * call carries when the client has one (never in clear text beyond this host).
 * The client library, the worker, the asset client and the meta-build client
 * all dial through here.
 */
import {
  Channel,
  type ChannelCredentials,
  type ChannelOptions,
  credentials,
  InterceptingCall,
  type Interceptor,
} from '@grpc/grpc-js';
import { CLIENT_CHANNEL_OPTIONS } from './tuning.js';

/** Where to connect, as grpc-js names it, and whether the connection uses TLS. */
export interface DialTarget {
  /** `HOST:PORT`, `[IPv6]:PORT` or `unix:PATH`. */
  readonly address: string;
  readonly tls: boolean;
}

/** TLS settings of a client (PEM contents, not file names). */
export interface DialTlsOptions {
  /** CAs that may sign the server's certificate; the system's CAs when absent. */
  readonly certificateAuthorityPem?: Buffer;
  /** The client's certificate chain and key, for servers that require client certificates (mTLS). */
  readonly clientCertificateChainPem?: Buffer;
  readonly clientPrivateKeyPem?: Buffer;
}

/** Gives the token to send, read afresh for every call (so a rotated token file is picked up). */
export type TokenSource = () => string;

export interface DialOptions {
  /** TLS settings; only used (and then optional) for grpcs:// and https:// addresses. */
  readonly tls?: DialTlsOptions;
  /**
   * A bearer token sent as `authorization: Bearer TOKEN` on every call. Refused
   * for plain-text addresses other than loopback and unix sockets: use grpcs://.
   */
  readonly token?: TokenSource;
  /** grpc-js channel options on top of our tuning (e.g. a benchmark's own connection per client). */
  readonly channelOptions?: ChannelOptions;
}

/** A channel to one server; typed clients made from it share its connection. */
export interface DialedChannel {
  /** The server address as given. */
  readonly url: string;
  readonly target: DialTarget;
  /** A typed client (e.g. ContentAddressableStorageClient) on this channel. */
  client<Client>(
    clientClass: new (address: string, credentials: ChannelCredentials, options: Partial<ChannelOptions>) => Client,
  ): Client;
  close(): void;
}

const SCHEMES: Record<string, { tls: boolean; defaultPort?: number }> = {
  grpc: { tls: false },
  http: { tls: false, defaultPort: 80 },
  grpcs: { tls: true, defaultPort: 443 },
  https: { tls: true, defaultPort: 443 },
};

const HOST = String.raw`(?:\[[0-9A-Fa-f:.]+\]|[^\s/:@\[\]]+)`;
const HOST_PORT = new RegExp(`^(${HOST}):(\\d{1,5})$`);
const URL_FORM = new RegExp(`^([a-z]+)://(${HOST})(?::(\\d{1,5}))?/?$`);

/**
 * Parses a server address. `grpc://` and `http://` are plain text, `grpcs://` and
 * `https://` TLS (port 443 when omitted; `http://` defaults to 80); a bare
 * HOST:PORT is plain text; `unix:PATH` (or `unix:///PATH`) is a local socket.
 */
export function parseDialTarget(url: string): DialTarget {
  const invalid = () =>
    new Error(`invalid server address "${url}" (expected grpc://HOST:PORT, grpcs://HOST:PORT, HOST:PORT or unix:PATH)`);
  if (url.startsWith('unix:')) {
    const path = url.startsWith('unix://') ? url.slice('unix://'.length) : url.slice('unix:'.length);
    if (path === '' || (url.startsWith('unix://') && !path.startsWith('/'))) throw invalid();
    return { address: `unix:${path}`, tls: false };
  }
  const bare = HOST_PORT.exec(url);
  if (bare) return { address: checkedAddress(bare[1] as string, bare[2] as string, invalid), tls: false };
  const match = URL_FORM.exec(url);
  const scheme = match ? SCHEMES[match[1] as string] : undefined;
  if (!match || !scheme) throw invalid();
  const host = match[2] as string;
  const port = match[3] ?? (scheme.defaultPort === undefined ? undefined : String(scheme.defaultPort));
  // grpc-js itself assumes 443 for an address without a port.
  return { address: port === undefined ? host : checkedAddress(host, port, invalid), tls: scheme.tls };
}

function checkedAddress(host: string, port: string, invalid: () => Error): string {
  const number = Number(port);
  if (!Number.isInteger(number) || number < 1 || number > 65535) throw invalid();
  return `${host}:${number}`;
}

/** The channel credentials for a target: the one place Granary creates any. */
export function channelCredentialsFor(target: DialTarget, options: DialOptions = {}): ChannelCredentials {
  const tls = options.tls;
  if (!target.tls) {
    if (tls && Object.values(tls).some((value) => value !== undefined)) {
      throw new Error('TLS options were given for a plain-text address: use grpcs:// (or https://)');
    }
    return credentials.createInsecure();
  }
  if ((tls?.clientCertificateChainPem === undefined) !== (tls?.clientPrivateKeyPem === undefined)) {
    throw new Error('a client certificate needs both its certificate chain and its private key');
  }
  return credentials.createSsl(
    tls?.certificateAuthorityPem ?? null,
    tls?.clientPrivateKeyPem ?? null,
    tls?.clientCertificateChainPem ?? null,
  );
}

/** Whether an address stays on this machine (loopback or a unix socket), where clear text hides nothing. */
export function isLocalAddress(address: string): boolean {
  if (address.startsWith('unix:')) return true;
  const bracketed = /^\[([^\]]+)\]/.exec(address);
  const host = bracketed ? bracketed[1] : address.includes(':') ? address.slice(0, address.lastIndexOf(':')) : address;
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Adds `authorization: Bearer TOKEN` to every call's metadata. */
function bearerInterceptor(token: TokenSource): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set('authorization', `Bearer ${token()}`);
        next(metadata, listener);
      },
    });
}

/** Opens a channel to `url` (connecting lazily, on the first call). */
export function dial(url: string, options: DialOptions = {}): DialedChannel {
  const target = parseDialTarget(url);
  const channelCredentials = channelCredentialsFor(target, options);
  if (options.token && !target.tls && !isLocalAddress(target.address)) {
    throw new Error(`refusing to send a token in clear text to ${target.address}: use grpcs:// (TLS)`);
  }
  const channelOptions: ChannelOptions = { ...CLIENT_CHANNEL_OPTIONS, ...options.channelOptions };
  const channel = new Channel(target.address, channelCredentials, channelOptions);
  const interceptors = options.token ? [bearerInterceptor(options.token)] : [];
  return {
    url,
    target,
    client: (clientClass) =>
      new clientClass(target.address, channelCredentials, {
        ...channelOptions,
        channelOverride: channel,
        interceptors,
      }),
    close: () => channel.close(),
  };
}
