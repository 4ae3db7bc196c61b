/**
 * The security flags of a Granary server (`granary serve`, and any later server
 * command): TLS certificate and key (reloaded when their files change),
 * the client CA that makes TLS mutual, the access file of tokens and
 * certificate subjects, a JWK Set for JWTs, and what callers without
 * credentials may do. They become the listener's TLS options, the access policy
 * (for the gRPC hooks and the HTTP port) and the lines printed at start-up.
 */

import { type AccessPolicy, enforcedAccess, OPEN_ACCESS } from '../auth/accessPolicy.js';
import { type AnonymousAccess, CallerAuthenticator, type InternalCredential } from '../auth/callerAuthenticator.js';
import { accessHooks } from '../grpc/accessHooks.js';
import { isLocalAddress } from '../grpc/dial.js';
import type { ServerTlsOptions } from '../grpc/server.js';
import type { ServerHooks } from '../server/storageServer.js';
import { ReloadingServerTls } from '../tls/serverTlsFiles.js';
import { type FlagSpec, flag, type ParsedArgs, UsageError } from './args.js';

/** The TLS flags of a listener: --tls-cert and --tls-key, and --tls-client-ca for mTLS. */
export const SERVER_TLS_FLAGS: Record<string, FlagSpec> = {
  'tls-cert': {
    type: 'string',
    help: 'serve TLS (and HTTPS on the HTTP port) with this certificate chain (PEM; reloaded when the file changes)',
  },
  'tls-key': { type: 'string', help: 'private key (PEM) of --tls-cert' },
  'tls-client-ca': {
    type: 'string',
    help: 'require client certificates signed by this CA (mTLS); the subject identifies the caller',
  },
};

export const SERVER_SECURITY_FLAGS: Record<string, FlagSpec> = {
  ...SERVER_TLS_FLAGS,
  'auth-tokens': {
    type: 'string',
    help: 'YAML list of callers: name, token | sha256 | client-certificate, scopes, instances (reloaded on SIGHUP)',
  },
  'auth-jwks': { type: 'string', help: 'accept JWTs (RS256, ES256, EdDSA) signed by a key of this JWK Set file' },
  'auth-jwt-audience': { type: 'string', help: 'the "aud" JWTs must carry (required with --auth-jwks)' },
  'auth-jwt-issuer': { type: 'string', help: 'the "iss" JWTs must carry' },
  anonymous: {
    type: 'string',
    help: 'with authentication configured, what callers without credentials may do: none or read (default none)',
  },
};

/** A server's security, as configured by its flags. */
export interface ServerSecurity {
  /** Who may do what; open when no authentication is configured. */
  readonly policy: AccessPolicy;
  /** The gRPC edge hooks of the policy (undefined when open: the factory's defaults). */
  readonly hooks: ServerHooks | undefined;
  /** TLS of the public listeners, when configured. */
  readonly tls: ServerTlsOptions | undefined;
  /** The start-up lines: what is protected, and loud warnings about what is not. */
  describe(listen: string): { info: string[]; warnings: string[] };
  /** Re-reads tokens, the JWK Set and the certificates (SIGHUP); returns what happened. */
  reload(): Promise<string[]>;
  close(): void;
}

/**
 * Opens the certificate files the TLS flags name (undefined without TLS); they are
 * watched and reloaded when they change. A bad file fails start-up with its name.
 */
export async function openServerTlsFiles(
  args: ParsedArgs,
  log: (line: string) => void,
): Promise<ReloadingServerTls | undefined> {
  const certificateFile = flag(args, 'tls-cert');
  const keyFile = flag(args, 'tls-key');
  const clientCaFile = flag(args, 'tls-client-ca');
  if ((certificateFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError('--tls-cert and --tls-key go together');
  }
  if (clientCaFile !== undefined && certificateFile === undefined) {
    throw new UsageError('--tls-client-ca needs --tls-cert and --tls-key (mTLS is TLS)');
  }
  if (certificateFile === undefined || keyFile === undefined) return undefined;
  try {
    return await ReloadingServerTls.open(
      { certificateFile, keyFile, clientCertificateAuthorityFile: clientCaFile },
      { log },
    );
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The listener options of opened TLS files: their current material, and its changes. */
export function listenerTlsOf(files: ReloadingServerTls): ServerTlsOptions {
  return { ...files.current(), subscribe: (listener) => files.subscribe(listener) };
}

/** Reads the security flags and opens their files; a bad file fails start-up with its name and line. */
export async function openServerSecurity(
  args: ParsedArgs,
  options: { internal?: readonly InternalCredential[]; log: (line: string) => void },
): Promise<ServerSecurity> {
  const certificateFile = flag(args, 'tls-cert');
  const keyFile = flag(args, 'tls-key');
  const clientCaFile = flag(args, 'tls-client-ca');
  const accessFile = flag(args, 'auth-tokens');
  const jwksFile = flag(args, 'auth-jwks');
  const audience = flag(args, 'auth-jwt-audience');
  const issuer = flag(args, 'auth-jwt-issuer');
  const anonymousFlag = flag(args, 'anonymous');
  if (jwksFile !== undefined && audience === undefined) {
    throw new UsageError('--auth-jwks needs --auth-jwt-audience (the "aud" of tokens meant for this farm)');
  }
  if (jwksFile === undefined && (audience !== undefined || issuer !== undefined)) {
    throw new UsageError('--auth-jwt-audience and --auth-jwt-issuer need --auth-jwks');
  }
  if (anonymousFlag !== undefined && anonymousFlag !== 'none' && anonymousFlag !== 'read') {
    throw new UsageError(`--anonymous must be none or read, got "${anonymousFlag}"`);
  }
  const authenticating = accessFile !== undefined || jwksFile !== undefined || clientCaFile !== undefined;
  if (anonymousFlag !== undefined && !authenticating) {
    throw new UsageError('--anonymous needs authentication to apply to: --auth-tokens, --auth-jwks or --tls-client-ca');
  }
  const anonymous: AnonymousAccess = (anonymousFlag as AnonymousAccess | undefined) ?? 'none';

  const tlsFiles = await openServerTlsFiles(args, options.log);
  let authenticator: CallerAuthenticator | undefined;
  if (authenticating) {
    try {
      authenticator = await CallerAuthenticator.open({
        accessFile,
        jwks:
          jwksFile === undefined ? undefined : { path: jwksFile, settings: { audience: audience as string, issuer } },
        anonymous,
        internal: options.internal,
        log: options.log,
      });
    } catch (error) {
      tlsFiles?.close();
      throw new UsageError((error as Error).message);
    }
  }
  const policy = authenticator ? enforcedAccess(authenticator) : OPEN_ACCESS;
  const tls = tlsFiles && listenerTlsOf(tlsFiles);

  return {
    policy,
    hooks: authenticator ? accessHooks(policy) : undefined,
    tls,
    describe: (listen) => {
      const info: string[] = [];
      const warnings: string[] = [];
      const local = isLocalAddress(listen);
      if (tlsFiles) {
        const summary = tlsFiles.summary();
        info.push(
          `TLS with ${summary.subject} (valid until ${new Date(summary.validToMs).toISOString()}; reloaded when ${certificateFile} or ${keyFile} changes)`,
        );
        if (summary.validToMs < Date.now()) warnings.push(`the TLS certificate ${certificateFile} has EXPIRED`);
      }
      if (clientCaFile !== undefined) info.push(`clients must present a certificate signed by ${clientCaFile} (mTLS)`);
      if (authenticator) {
        const sources = [];
        if (accessFile !== undefined) sources.push(`callers of ${accessFile}`);
        if (jwksFile !== undefined) sources.push(`JWTs signed by a key of ${jwksFile} for audience "${audience}"`);
        if (clientCaFile !== undefined && accessFile === undefined) sources.push('any certificate of the client CA');
        info.push(
          `authentication: ${sources.join(', ')}; without credentials: ${anonymous === 'read' ? 'read only' : 'refused'}`,
        );
        if (!tlsFiles && !local) {
          warnings.push(
            `tokens travel in CLEAR TEXT on ${listen}: anyone on the network can copy them. Add --tls-cert and --tls-key.`,
          );
        }
      } else if (local) {
        info.push(
          `no authentication configured: every caller reaching ${listen} may read, write and run anything (loopback only; see SECURITY.md)`,
        );
      } else {
        warnings.push(
          `listening on ${listen} with NO AUTHENTICATION: anyone who can reach this port can read every blob, poison the action cache and run commands on the workers. Use --auth-tokens, --auth-jwks or --tls-client-ca (see SECURITY.md).`,
        );
        if (!tlsFiles) warnings.push(`traffic on ${listen} is not encrypted: add --tls-cert and --tls-key.`);
      }
      return { info, warnings };
    },
    reload: async () => {
      const lines: string[] = [];
      if (authenticator) {
        try {
          lines.push(await authenticator.reload());
        } catch (error) {
          lines.push(`authentication files not reloaded, the previous ones stay in force: ${(error as Error).message}`);
        }
      }
      if (tlsFiles && !(await tlsFiles.reload())) lines.push('TLS certificate unchanged');
      return lines;
    },
    close: () => tlsFiles?.close(),
  };
}
