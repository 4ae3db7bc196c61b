/**
 * The server's AccessPolicy at the HTTP port: the same callers and scopes as on
 * gRPC, read from the request's Authorization header, a verified client
 * certificate, or, for the web UI in a browser, the cookie its login form sets.
 * The cookie counts only for GET and HEAD, which change nothing, so another site
 * cannot make a signed-in browser act (and it is SameSite=Strict besides).
 * A route's scope may be held on any instance: the UI shows each caller only
 * the operations of the instances it covers (see mayViewInstance).
 *
 * When the server requires client certificates (mTLS), the port asks for one
 * without requiring it at the TLS layer, so that load balancers can probe
 * /healthz and /readyz; every other path is refused (403) to a caller without a
 * verified certificate, whatever token it sends, as on the gRPC port, and the
 * certificate's subject is the caller.
 */
import type { PeerCertificate } from 'node:tls';
import { authorize, coversInstance } from '../auth/access.js';
import type { AccessPolicy } from '../auth/accessPolicy.js';
import { httpStatusOfRefusal } from '../auth/httpAccess.js';
import type { Principal } from '../context/requestContext.js';
import { type HttpAuthenticator, HttpError } from './httpServer.js';
import { PROBE_PATHS } from './operatorRoutes.js';

/** The cookie the web UI's login form sets; read as a bearer token. */
export const TOKEN_COOKIE = 'granary_token';

export interface HttpAccessOptions {
  /** The server requires client certificates (mTLS): only probes answer a caller without one. */
  readonly clientCertificateRequired?: boolean;
}

export function httpAuthenticatorOf(policy: AccessPolicy, options: HttpAccessOptions = {}): HttpAuthenticator {
  return async (request) => {
    if (options.clientCertificateRequired && !request.peerCertificate && !PROBE_PATHS.has(request.path)) {
      // 403, not 401: a browser sent to the login form would be refused there too.
      throw new HttpError(
        403,
        'this port requires a client certificate signed by the client CA (only /healthz and /readyz answer without one)',
      );
    }
    const headers = request.headers.authorization === undefined ? [] : [request.headers.authorization];
    const cookieToken =
      request.method === 'GET' || request.method === 'HEAD' ? tokenOfCookie(request.headers.cookie) : undefined;
    const authorization = headers.length === 0 && cookieToken !== undefined ? [`Bearer ${cookieToken}`] : headers;
    try {
      const principal = await policy.authenticate(
        { authorization, verifiedClientCertificate: request.peerCertificate?.raw },
        request.requirement,
      );
      const requirement = request.requirement;
      if (requirement !== 'public' && !principal.scopes.has(requirement)) {
        // Throws UNAUTHENTICATED for a caller without credentials, PERMISSION_DENIED otherwise.
        authorize(principal, requirement, '');
      }
      return principal;
    } catch (error) {
      throw new HttpError(httpStatusOfRefusal(error), (error as Error).message);
    }
  };
}

/**
 * Why the port would refuse a token for reading (the login form asks), with the
 * client certificate of the asking connection; undefined when it accepts it.
 */
export async function refusalOfToken(
  authenticator: HttpAuthenticator,
  token: string,
  peerCertificate?: PeerCertificate,
): Promise<string | undefined> {
  try {
    await authenticator({
      method: 'GET',
      path: '/login',
      headers: { authorization: `Bearer ${token}` },
      peer: 'login form',
      peerCertificate,
      requirement: 'read',
    });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Whether the caller may see what happened on an instance (its operations). */
export function mayViewInstance(principal: Principal, instanceName: string): boolean {
  return coversInstance(principal, instanceName);
}

/** The token in a request's cookie, if the login form set one. */
export function tokenOfCookie(cookieHeader: string | undefined): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === TOKEN_COOKIE) {
      try {
        const token = decodeURIComponent(value.join('='));
        return token === '' ? undefined : token;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
