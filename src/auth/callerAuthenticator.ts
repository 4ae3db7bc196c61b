/**
 * Who is calling, from what the caller presented, whatever the transport: the
 * gRPC edge and the HTTP port both turn their request into PresentedCredentials
 * and ask authenticate(). The sources, in order: a bearer token (the process's
 * internal credentials, the access file's tokens, then a JWT), else a verified
 * mTLS client certificate (named in the access file, or, without one, trusted
 * for everything because the client CA is the list of callers), else the
 * anonymous policy. A credential that is present but wrong is always refused,
 * never quietly downgraded to anonymous. reload() re-reads the files (SIGHUP)
 * and keeps the previous state when they are broken.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Principal } from '../context/requestContext.js';
import { Code, StatusError } from '../util/status.js';
import { ALL_SCOPES, type Requirement } from './access.js';
import { subjectOfCertificate } from './certificateSubject.js';
import { type JwtSettings, JwtVerifier } from './jwtVerifier.js';
import { type AccessEntry, loadAccessFile } from './tokenFile.js';

/** What a caller presented, as any transport can tell it. */
export interface PresentedCredentials {
  /** Every value of the Authorization header (normally none or one). */
  readonly authorization: readonly string[];
  /** The client certificate (DER) the TLS handshake verified against the client CA, if any. */
  readonly verifiedClientCertificate: Buffer | undefined;
}

/** What callers without any credential may do once authentication is configured. */
export type AnonymousAccess = 'none' | 'read';

/** A credential the server made for a process of its own (the embedded worker); never written anywhere. */
export interface InternalCredential {
  readonly token: string;
  readonly principal: Principal;
}

export interface CallerAuthenticatorOptions {
  /** The `--auth-tokens` file (tokens and client-certificate subjects). */
  readonly accessFile?: string;
  /** The `--auth-jwks` file and what tokens must claim. */
  readonly jwks?: { readonly path: string; readonly settings: JwtSettings };
  readonly anonymous: AnonymousAccess;
  readonly internal?: readonly InternalCredential[];
  /** Warnings found while loading (e.g. a world-readable file of plain tokens). */
  readonly log?: (line: string) => void;
}

/** A caller without credentials, under `--anonymous read`. */
export const ANONYMOUS_READER: Principal = {
  name: 'anonymous',
  kind: 'anonymous',
  scopes: new Set(['read']),
  instances: ['*'],
};
/** A caller without credentials reaching a public method under `--anonymous none`. */
const NOBODY: Principal = { name: 'anonymous', kind: 'anonymous', scopes: new Set(), instances: [] };

interface LoadedState {
  readonly tokens: ReadonlyMap<string, Principal>;
  readonly subjects: ReadonlyMap<string, Principal>;
  readonly entryCount: number;
  readonly jwt: JwtVerifier | undefined;
}

function principalOfEntry(entry: AccessEntry): Principal {
  return {
    name: entry.name,
    kind: entry.credential.kind === 'token' ? 'token' : 'certificate',
    scopes: entry.scopes,
    instances: entry.instances,
  };
}

const BEARER = /^bearer\s+(\S+)\s*$/i;

export class CallerAuthenticator {
  private readonly internalDigests: { digest: Buffer; principal: Principal }[];

  private constructor(
    private readonly options: CallerAuthenticatorOptions,
    private state: LoadedState,
  ) {
    this.internalDigests = (options.internal ?? []).map((credential) => ({
      digest: createHash('sha256').update(credential.token).digest(),
      principal: credential.principal,
    }));
  }

  /** Loads the files; throws (naming file and line) when one is missing or invalid. */
  static async open(options: CallerAuthenticatorOptions): Promise<CallerAuthenticator> {
    return new CallerAuthenticator(options, await CallerAuthenticator.load(options));
  }

  private static async load(options: CallerAuthenticatorOptions): Promise<LoadedState> {
    const tokens = new Map<string, Principal>();
    const subjects = new Map<string, Principal>();
    let entryCount = 0;
    if (options.accessFile !== undefined) {
      const loaded = await loadAccessFile(options.accessFile);
      for (const warning of loaded.warnings) options.log?.(`WARNING: ${warning}`);
      for (const entry of loaded.entries) {
        if (entry.credential.kind === 'token') tokens.set(entry.credential.sha256Hex, principalOfEntry(entry));
        else subjects.set(entry.credential.subject, principalOfEntry(entry));
      }
      entryCount = loaded.entries.length;
    }
    const jwt = options.jwks ? await JwtVerifier.load(options.jwks.path, options.jwks.settings) : undefined;
    return { tokens, subjects, entryCount, jwt };
  }

  /**
   * Re-reads the access and JWKS files. On failure the previous callers stay in
   * force and the error is thrown for the caller to log.
   */
  async reload(): Promise<string> {
    this.state = await CallerAuthenticator.load(this.options);
    const parts = [];
    if (this.options.accessFile !== undefined)
      parts.push(`${this.state.entryCount} entries from ${this.options.accessFile}`);
    if (this.options.jwks) parts.push(`the JWK Set ${this.options.jwks.path}`);
    return `reloaded ${parts.join(' and ')}`;
  }

  /** Establishes the caller; throws UNAUTHENTICATED when it cannot (see the file comment for the order). */
  async authenticate(credentials: PresentedCredentials, requirement: Requirement): Promise<Principal> {
    if (credentials.authorization.length > 1) {
      throw new StatusError(Code.UNAUTHENTICATED, 'several authorization headers were sent');
    }
    const [authorization] = credentials.authorization;
    if (authorization !== undefined) return this.bearer(authorization);
    const certificate = credentials.verifiedClientCertificate;
    let unlisted = '';
    if (certificate) {
      const subject = subjectOfCertificate(certificate);
      if (this.options.accessFile === undefined) {
        return { name: subject, kind: 'certificate', scopes: new Set(ALL_SCOPES), instances: ['*'] };
      }
      const listed = this.state.subjects.get(subject);
      if (listed) return listed;
      unlisted = ` (the client certificate "${subject}" is not in ${this.options.accessFile})`;
    }
    if (this.options.anonymous === 'read') return ANONYMOUS_READER;
    if (requirement === 'public') return NOBODY;
    throw new StatusError(
      Code.UNAUTHENTICATED,
      `credentials are required: send "authorization: Bearer TOKEN"${unlisted}`,
    );
  }

  private async bearer(authorization: string): Promise<Principal> {
    const token = BEARER.exec(authorization)?.[1];
    if (token === undefined) {
      throw new StatusError(Code.UNAUTHENTICATED, 'the authorization header must be "Bearer TOKEN"');
    }
    const digest = createHash('sha256').update(token).digest();
    for (const internal of this.internalDigests) {
      if (timingSafeEqual(internal.digest, digest)) return internal.principal;
    }
    const listed = this.state.tokens.get(digest.toString('hex'));
    if (listed) return listed;
    if (this.state.jwt && token.split('.').length === 3) return this.state.jwt.verify(token);
    throw new StatusError(Code.UNAUTHENTICATED, 'unknown token');
  }
}
